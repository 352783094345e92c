"""The reply of ``/v1/analyze``: per-item results (each saying which model answered and why) and the
per-symbol aggregates, which combine items across models by polarity (``symbols.aggregate_scored``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..formats.labels import POLARITIES
from .multi import Route
from .symbols import Scored, aggregate_scored


def analyze_reply(items: Sequence[Any], symbols: Sequence[tuple[list[str], bool]],
                  picks: Sequence[tuple[Route, str, str | None]], rows: Sequence[Sequence[float]]) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    scored: list[Scored] = []
    answered: dict[str, Route] = {}
    for it, (syms, detected), (route, reason, market), probs in zip(items, symbols, picks, rows):
        r = route.result(probs)
        r.update(id=it.id, model=route.name, route=reason, market=market, symbols=syms,
                 symbols_detected=detected, source=it.source, published_at=it.published_at)
        out.append(r)
        answered.setdefault(route.name, route)
        scored.append((syms, r["signed_score"], r["score"], r["polarity"], route.name))
    refs = {name: route.ref() for name, route in answered.items()}
    return {"model": next(iter(refs.values())) if len(refs) == 1 else None, "models": refs, "items": out,
            "symbols": aggregate_scored(scored, POLARITIES)}


__all__ = ["analyze_reply"]
