"""Admission control measured in work: how many estimated tokens may wait for the model.

A request is admitted only if the work already admitted (queued or being computed) plus its own fits
the bound; beyond it the service answers at once 503 with ``Retry-After`` instead of queueing work it
cannot finish in time (a queue that only grows is congestion collapse: every client waits, times out,
and the model keeps computing answers nobody reads).

The bound is in estimated tokens, not requests, because the model's cost is per token: one request of
64 long texts is hundreds of times the work of one headline. Two modes:

* **auto** (``max_queued_tokens=0``, the default): the bound is what the model can finish within half
  of the request's deadline, from the throughput measured on the service's own model calls (tokens per
  second of model time, a moving average). The other half of the deadline leaves room for the batch
  running when the request arrives and for its own batch. Before the first model call has been timed
  the bound is :data:`BOOTSTRAP_TOKENS`.
* **fixed** (``max_queued_tokens=N``): at most N tokens admitted at once, whatever the throughput.
* ``max_queued_tokens=-1`` turns admission control off (every request is queued, the old behaviour).

A request is always admitted when nothing is queued, so a single request larger than the bound is
served, never refused forever.

Several batchers may share one total budget: give each its own ``Admission`` with ``parent=`` a shared
one; a request must fit both. An auto parent learns its rate from every child's model calls (the
blended throughput of the models behind it).

Everything here runs on the event loop: no locks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

#: wordpiece tokenizers split English news into about one token per 4 characters, plus [CLS] and [SEP]
CHARS_PER_TOKEN = 4
SPECIAL_TOKENS = 2
MAX_TOKENS_PER_TEXT = 512  # BERT-style models truncate there
#: the auto bound before the first model call has been timed (a few batches of headlines)
BOOTSTRAP_TOKENS = 2048
#: in auto mode, the queued work may take this share of the deadline
DEADLINE_SHARE = 0.5
_EWMA = 0.2  # weight of the newest batch in the throughput average
RETRY_AFTER_MAX_S = 60
SATURATED_FOR_S = 5.0  # "saturated" while the bound is reached or a request was refused this recently


def estimate_tokens(text: str) -> int:
    """A cheap upper-ish estimate of the model tokens of ``text`` (no tokenizer call on the event loop)."""
    return min(MAX_TOKENS_PER_TEXT, len(text) // CHARS_PER_TOKEN + SPECIAL_TOKENS)


def estimate(texts: Sequence[str]) -> list[int]:
    return [estimate_tokens(t) for t in texts]


class Overloaded(Exception):
    """Refused at admission: the bound is reached. ``retry_after`` is whole seconds (>= 1)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class Admission:
    def __init__(self, *, max_tokens: int = 0, deadline_s: float = 0.0, parent: Admission | None = None,
                 name: str = "service"):
        if max_tokens < -1:
            raise ValueError(f"max_tokens={max_tokens} must be -1 (off), 0 (auto) or a bound >= 1")
        self.max_tokens = max_tokens
        self.deadline_s = deadline_s
        self.parent = parent
        self.name = name
        self.tokens = 0   # admitted and not finished: queued or being computed
        self.texts = 0
        self.rate: float | None = None  # tokens per second of model time, measured
        self.last_refused: float | None = None  # time.monotonic() of the last refusal

    @property
    def enabled(self) -> bool:
        return self.max_tokens != -1

    @property
    def mode(self) -> str:
        return {-1: "off", 0: "auto"}.get(self.max_tokens, "fixed")

    def limit(self, budget_s: float | None = None) -> int | None:
        """The bound in tokens for a request with ``budget_s`` seconds left (None: no bound)."""
        if self.max_tokens == -1:
            return None
        if self.max_tokens > 0:
            return self.max_tokens
        budget = budget_s if budget_s is not None else self.deadline_s
        if self.rate is None or not budget or budget <= 0:
            return BOOTSTRAP_TOKENS
        return max(1, int(self.rate * budget * DEADLINE_SHARE))

    def admit(self, tokens: int, texts: int, budget_s: float | None = None) -> None:
        """Count ``tokens`` in, or raise :class:`Overloaded` (nothing counted)."""
        self._check(tokens, budget_s)
        node: Admission | None = self
        while node is not None:
            node.tokens += tokens
            node.texts += texts
            node = node.parent

    def _check(self, tokens: int, budget_s: float | None) -> None:
        node: Admission | None = self
        while node is not None:
            limit = node.limit(budget_s)
            if limit is not None and node.tokens > 0 and node.tokens + tokens > limit:
                self.last_refused = node.last_refused = time.monotonic()
                raise Overloaded(f"the {node.name} has {node.tokens} estimated tokens of work queued; the "
                                 f"bound is {limit} ({node.mode}); retry after {node.retry_after()} s",
                                 node.retry_after())
            node = node.parent

    def full(self) -> Overloaded | None:
        """The refusal for ANY new request when the queued work already reaches the bound (checked
        before a body is read, so a flood is refused without parsing it), else None."""
        node: Admission | None = self
        while node is not None:
            limit = node.limit()
            if limit is not None and node.tokens > 0 and node.tokens >= limit:
                self.last_refused = node.last_refused = time.monotonic()
                return Overloaded(f"the {node.name} has {node.tokens} estimated tokens of work queued; the "
                                  f"bound is {limit} ({node.mode}); retry after {node.retry_after()} s",
                                  node.retry_after())
            node = node.parent
        return None

    def release(self, tokens: int, texts: int) -> None:
        node: Admission | None = self
        while node is not None:
            node.tokens -= tokens
            node.texts -= texts
            node = node.parent

    def observe(self, tokens: int, seconds: float) -> None:
        """One model call of ``tokens`` took ``seconds`` of model time."""
        if tokens <= 0 or seconds <= 0:
            return
        r = tokens / seconds
        self.rate = r if self.rate is None else (1 - _EWMA) * self.rate + _EWMA * r
        if self.parent is not None and self.parent.max_tokens == 0:
            # an auto total (several models) learns from every model's calls: its rate is the blended
            # throughput of the model time the models share
            self.parent.observe(tokens, seconds)

    def retry_after(self) -> int:
        """Whole seconds until today's queue is worked off (at least 1, at most a minute)."""
        if not self.rate:
            return 1
        return max(1, min(RETRY_AFTER_MAX_S, math.ceil(self.tokens / self.rate)))

    @property
    def saturated(self) -> bool:
        limit = self.limit()
        if limit is not None and self.tokens >= limit:
            return True
        return self.last_refused is not None and time.monotonic() - self.last_refused < SATURATED_FOR_S

    def as_dict(self) -> dict[str, object]:
        """For /v1/models and /readyz."""
        return {"mode": self.mode, "max_queued_tokens": self.limit(), "queued_tokens": self.tokens,
                "queued_texts": self.texts,
                "measured_tokens_per_second": round(self.rate, 1) if self.rate else None,
                "deadline_s": self.deadline_s or None}


__all__ = ["Admission", "Overloaded", "estimate", "estimate_tokens"]
