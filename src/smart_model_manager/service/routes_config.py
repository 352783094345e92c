"""How a service is told to serve several models: routes, each a name and a model.

One form, the same everywhere:

* CLI: ``smm serve sentiment --model crypto=kk08/CryptoBERT --model stock=finbert [--optional stock]``
  (``--model`` repeatable; a single ``--model finbert`` without ``NAME=`` is the one-model service);
* environment / service config: ``SMM_SERVICE_MODELS=crypto=kk08/CryptoBERT,stock=finbert`` and
  ``SMM_SERVICE_OPTIONAL=stock``.

A route name is lowercase letters, digits, ``-`` and ``_`` (starting with a letter, at most 32). The model
is anything ``load_model`` accepts (an alias of the lock, a repo id); the lock resolves it as for one
model. The first route is the default of ``/v1/sentiment``. With the keyword detector, a multi-model
service names its routes after the markets (``crypto``, ``stock``): see ``service.market``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigurationError

ROUTE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}", re.ASCII)
#: The route name of a one-model service (``--model finbert``, ``SMM_SERVICE_MODEL``).
SINGLE = "default"


@dataclass(frozen=True)
class RouteSpec:
    name: str
    model: str          # "" = the library's default-model rule (one-model service only)
    optional: bool = False


def split_route(value: str) -> tuple[str | None, str]:
    """``"crypto=kk08/CryptoBERT"`` -> ``("crypto", "kk08/CryptoBERT")``; ``"finbert"`` -> ``(None, "finbert")``.
    The left side must be a route name, so a folder path with '=' in it is taken whole."""
    name, sep, model = value.strip().partition("=")
    if sep and ROUTE_NAME.fullmatch(name.strip()):
        return name.strip(), model.strip()
    return None, value.strip()


def parse_routes(models: str, optional: str = "", *, variable: str = "SMM_SERVICE_MODELS") -> list[RouteSpec]:
    """``"crypto=kk08/CryptoBERT,stock=finbert"`` and ``"stock"`` -> route specs, in order. Raises
    ConfigurationError naming the entry for a missing name, a bad name, an empty model or a duplicate, and
    for an optional route that does not exist or an all-optional service (nothing would be required)."""
    specs: list[RouteSpec] = []
    seen: set[str] = set()
    for raw in (p for p in models.split(",") if p.strip()):
        name, model = split_route(raw)
        if name is None:
            raise ConfigurationError(f"{variable}: {raw.strip()!r} is not NAME=MODEL (NAME: lowercase letters, "
                                     "digits, '-', '_', starting with a letter), e.g. crypto=kk08/CryptoBERT")
        if not model:
            raise ConfigurationError(f"{variable}: route {name!r} names no model (write {name}=MODEL)")
        if name in seen:
            raise ConfigurationError(f"{variable}: route {name!r} is given twice")
        seen.add(name)
        specs.append(RouteSpec(name, model))
    wanted = [o.strip() for o in optional.split(",") if o.strip()]
    unknown = [o for o in wanted if o not in seen]
    if unknown:
        raise ConfigurationError(f"SMM_SERVICE_OPTIONAL names {unknown}, which are not routes; the routes are "
                                 f"{sorted(seen) or [SINGLE]}")
    if specs and len(set(wanted)) == len(specs):
        raise ConfigurationError("SMM_SERVICE_OPTIONAL marks every route optional; at least one model must be "
                                 "required, or the service could be ready with nothing to serve")
    return [RouteSpec(s.name, s.model, s.name in wanted) for s in specs]


__all__ = ["ROUTE_NAME", "SINGLE", "RouteSpec", "parse_routes", "split_route"]
