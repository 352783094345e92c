"""What a sentiment model's labels mean: label -> ``positive`` | ``negative`` | ``neutral`` (layer 2).

Two models can name the same thing differently (``positive`` / ``Bullish`` / ``LABEL_1``). A service
that serves both must make "the polarity of this text" mean the same whichever model answered, so each
label gets a polarity, from the first of:

1. a map **declared** for the model (``polarity:`` in models.yaml, pinned into models.lock);
2. the **known-model table** (``known_models.KNOWN_POLARITY``: models whose labels say nothing, such as
   ``kk08/CryptoBERT``'s ``LABEL_0`` / ``LABEL_1``, by their public model cards);
3. the **label names** themselves: ``positive``/``pos``/``bullish``, ``negative``/``neg``/``bearish``,
   ``neutral``/``neu``, case-insensitively.

A label none of these maps is refused (:class:`PolarityError`, one line naming the labels), and so is a
model without both a positive and a negative label: the signed score of such a model would be a silent
0.0 or a one-sided number, a plausible-looking wrong answer.

The signed score is defined here, once: ``P(positive) - P(negative)``, each the sum of the
probabilities of the labels mapped to it (``neutral`` labels count for neither). In [-1, 1].
The mocks (``loaders/mock.py``) take their labels' meaning from :func:`guess`, the same table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import ConfigurationError
from .formats.labels import POLARITIES
from .sources.known_models import known_polarity

POSITIVE, NEGATIVE, NEUTRAL = POLARITIES

NAME_RULE: dict[str, str] = {
    "positive": POSITIVE, "pos": POSITIVE, "bullish": POSITIVE,
    "negative": NEGATIVE, "neg": NEGATIVE, "bearish": NEGATIVE,
    "neutral": NEUTRAL, "neu": NEUTRAL,
}


class PolarityError(ConfigurationError):
    """A model whose labels cannot all be given a polarity, or that has no positive or no negative label."""


def guess(repo_id: str, labels: Sequence[str]) -> list[str | None]:
    """Polarity per label, in label order, from the known table then the names; ``None`` where neither
    knows (lenient: mocks use it to shape their output)."""
    known = known_polarity(repo_id)
    if known and len(known) == len(labels):
        return list(known)
    return [NAME_RULE.get(lab.strip().lower()) for lab in labels]


def resolve(repo_id: str, labels: Sequence[str], declared: Mapping[str, str] | None = None,
            *, name: str | None = None) -> tuple[tuple[str, str], ...]:
    """``((label, polarity), ...)`` in label order, or :class:`PolarityError` (one line). ``name`` is
    how the caller knows the model (a service route), used in the message."""
    who = f"model {name!r} ({repo_id})" if name and name != repo_id else f"model {repo_id}"
    labels = list(labels)
    if not labels:
        raise PolarityError(f"{who} has no labels, so no polarity can be given to its answers")
    if declared:
        missing = [lab for lab in labels if lab not in declared]
        bad = {lab: p for lab, p in declared.items() if p not in POLARITIES}
        if missing or bad:
            raise PolarityError(f"{who}: the declared polarity map does not cover its labels {labels}"
                                + (f"; missing {missing}" if missing else "")
                                + (f"; not one of {'/'.join(POLARITIES)}: {bad}" if bad else ""))
        pols: list[str | None] = [declared[lab] for lab in labels]
        origin = "declared map"
    else:
        pols = guess(repo_id, labels)
        origin = "known-model table and label names"
    unmapped = [lab for lab, p in zip(labels, pols) if p is None]
    if unmapped:
        raise PolarityError(f"{who} has labels {labels}; {unmapped} mean nothing to the {origin}: declare "
                            "'polarity: {LABEL: positive|negative|neutral, ...}' for it in models.yaml and "
                            "run smm lock")
    if POSITIVE not in pols or NEGATIVE not in pols:
        raise PolarityError(f"{who} has labels {labels} meaning {pols}; a signed score needs at least one "
                            "positive and one negative label")
    return tuple((lab, str(p)) for lab, p in zip(labels, pols))


def signed_score(probs: Sequence[float], polarities: Sequence[str]) -> float:
    """P(positive) - P(negative); ``polarities[i]`` is what label ``i`` means. The one definition."""
    if len(probs) != len(polarities):
        raise ValueError(f"{len(probs)} probabilities for {len(polarities)} labels")
    return (sum(float(p) for p, pol in zip(probs, polarities) if pol == POSITIVE)
            - sum(float(p) for p, pol in zip(probs, polarities) if pol == NEGATIVE))


def top_polarity(probs: Sequence[float], polarities: Sequence[str]) -> str:
    """The polarity of the top label (ties go to the first label, as the top label does)."""
    top = max(range(len(probs)), key=lambda j: (probs[j], -j))
    return polarities[top]


__all__ = ["NAME_RULE", "POLARITIES", "PolarityError", "guess", "resolve", "signed_score", "top_polarity"]
