"""The fallback chain. For each source the ``except`` says what it means:

* ``Unavailable``          -> "try the next source" (recorded with its reason);
* ``SourceError``          -> transient failure (network, timeout): recorded, try the next source;
* ``IntegrityError``, ``FormatError`` -> fatal: a hash mismatch or a malformed manifest never falls through
  (huggingface_hub #2364: integrity that is opt-in is integrity nobody has).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelNotFoundError, SourceError
from .base import Request, Resolved, Source, Unavailable
from .known_models import DEFAULT_MODEL, DEMO_REPO_ID

log = logging.getLogger(__name__)


def _fix_hint(request: Request, environment: str, hints: list[str]) -> str:
    tips = list(dict.fromkeys(h for h in hints if h))
    if environment != "production" and Path(request.name).is_dir():
        tips.insert(0, f"a folder named {request.name!r} is here: write ./{request.name} to load it "
                       "(a bare name is a repo id, as on the Hub)")
    if request.repo_id == DEMO_REPO_ID:
        tips.insert(0, "build the offline demo model with `smm models build-demo`")
    elif request.name == DEFAULT_MODEL and environment != "production":
        tips.insert(0, f"{DEFAULT_MODEL!r} is the default model (set SMM_MODEL or --model to "
                       "change it); offline, the demo model built by `smm models build-demo` "
                       "works wherever a name does: --model finbert-demo")
    if environment == "production":
        tips.append("production loads only from the volume: provision it with `smm pull --target DIR` "
                    "and point SMM_VOLUME_DIR at it")
    else:
        tips.append(f"fetch it once with `smm pull {request.repo_id}` (pins it in models.lock), "
                    "or import a local folder with `smm import DIR --as REPO_ID`")
        tips.append("set MODEL_CACHE_DIR / HF_HUB_CACHE if your cache lives elsewhere, or HF_ENDPOINT for a mirror")
    return "; ".join(tips)


def resolve_chain(sources: Sequence[Source], request: Request, environment: str) -> Resolved:
    attempts: list[tuple[str, str]] = []
    hints: list[str] = []
    for source in sources:
        try:
            resolved = source.resolve(request)
        except Unavailable as why:                 # try the next source
            attempts.append((source.name, why.reason))
            if why.hint:
                hints.append(why.hint)
            continue
        except SourceError as err:                 # transient: recorded, try the next source
            attempts.append((source.name, f"failed: {err}"))
            continue
        skipped = "; ".join(f"{n}: {r}" for n, r in attempts)
        log.info("resolved %s (%s) in env=%s from source=%s commit=%s verified=%s%s%s",
                 request.name, request.repo_id, environment, source.name, (resolved.commit or "-")[:12],
                 resolved.verified, f" ({resolved.schema_origin})" if resolved.schema_origin else "",
                 f"; skipped {skipped}" if skipped else "")
        return resolved
    tried = "\n".join(f"  - {name}: {reason}" for name, reason in attempts) or "  (no source configured)"
    raise ModelNotFoundError(
        f"model {request.name!r} ({request.repo_id}) is not available in environment {environment!r}.\n"
        f"Sources tried:\n{tried}\nTo fix: {_fix_hint(request, environment, hints)}",
        attempts=attempts)
