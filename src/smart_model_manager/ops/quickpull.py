"""``smm pull ORG/NAME[@REV]``: one step from a repo id to a pinned, pulled model.

What ``hf download ORG/NAME`` users expect, without giving up the lock: the model is added to
``models.yaml`` (created if absent) and pinned in ``models.lock`` (commit + sha256 of every file, the
same ``locking`` code ``smm lock`` runs), then pulled like any locked model. Both files stay
consistent, so a later ``smm lock`` keeps the model instead of dropping it.

Order matters: the network work (resolving the commit, hashing small files) happens first, and the
two files are written only when it succeeded, each atomically; a failure leaves both untouched.
A repo already in ``models.yaml`` keeps its alias, revision and type; asking for another revision of
it is refused with the line to edit. The model type, unless given, comes from the pinned
``config.json`` (a ``*ForSequenceClassification`` is sentiment, a bare ``*Model`` embeddings).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .._layout import REPO_ID_EXPECTED, is_repo_id
from ..errors import ConfigurationError, FormatError
from ..formats import lockfile, spec as spec_mod
from ..formats._fields import is_alias
from ..formats.lockfile import Lock
from ..formats.spec import SpecEntry
from ..remote.hub import HubClient
from ..store import cache as store
from .lock import AUTO, lock_entry

log = logging.getLogger(__name__)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``org/name@rev`` -> (``org/name``, ``rev``); a bad repo id is a ConfigurationError."""
    repo_id, _, revision = ref.partition("@")
    if not is_repo_id(repo_id) or (revision == "" and "@" in ref) or any(c.isspace() for c in revision):
        raise ConfigurationError(f"{ref!r}: expected ORG/NAME or ORG/NAME@REVISION, with {REPO_ID_EXPECTED}")
    return repo_id, revision or None


def _default_alias(repo_id: str, taken: dict[str, str]) -> str:
    """The repo's name (``finbert`` for ProsusAI/finbert) unless another repo uses it; else the id."""
    name = repo_id.split("/")[-1]
    owner = taken.get(name.lower())
    return name if is_alias(name) and owner in (None, repo_id.lower()) else repo_id


def add_model(ref: str, *, spec_path: Path, lock_path: Path, endpoint: str, token: str | None = None,
              timeout: float = 30.0, retries: int = 3, model_type: str | None = None,
              client: HubClient | None = None, offline: str | None = None) -> tuple[str, Lock, bool]:
    """Pin ``ref`` into ``spec_path`` and ``lock_path``. Returns (alias, the new lock, spec written)."""
    repo_id, revision = parse_ref(ref)
    spec = spec_mod.load(spec_path) if spec_path.is_file() else None
    previous = lockfile.load(lock_path) if lock_path.is_file() else None
    existing = next((e for e in (spec.models.values() if spec else ())
                     if e.repo_id.lower() == repo_id.lower()), None)
    where = f"{spec_path}:{existing.line}" if existing is not None and existing.line else str(spec_path)
    if existing is not None:
        if revision is not None and revision != existing.revision:
            raise ConfigurationError(f"{where}: models.{existing.alias} pins {existing.repo_id} at revision "
                                     f"{existing.revision!r}; change it there to pull {revision!r}")
        if model_type is not None and model_type != existing.model_type:
            raise ConfigurationError(f"{where}: models.{existing.alias} is a {existing.model_type} model; "
                                     f"change model_type there, not with --model-type {model_type}")
        entry = existing
    else:
        taken = {a.lower(): e.repo_id.lower() for a, e in (spec.models.items() if spec else ())}
        taken.update({a.lower(): e.repo_id.lower() for a, e in (previous.models.items() if previous else ())})
        alias = _default_alias(repo_id, taken)
        entry = SpecEntry(alias=alias, repo_id=repo_id, revision=revision or "main",
                          model_type=model_type or AUTO)
    client = client or HubClient(endpoint, token, timeout=timeout, retries=retries, offline=offline is not None,
                                 offline_reason=offline)
    old = previous.models.get(entry.alias) if previous is not None else None
    locked = lock_entry(client, entry, old, str(spec_path))   # the network work, before any write
    wrote_spec = False
    if existing is None:
        _append_to_spec(spec_path, entry, locked.model_type)
        wrote_spec = True
    models = dict(previous.models) if previous is not None else {}
    models[entry.alias] = locked
    lock = Lock(models=models)
    lockfile.write_lock(lock_path, lock)
    log.info("pinned %s as %s: %s@%s", ref, entry.alias, locked.repo_id, locked.commit[:12])
    return entry.alias, lockfile.load(lock_path), wrote_spec


def _append_to_spec(path: Path, entry: SpecEntry, model_type: str) -> None:
    """Append one entry under ``models:``; the result must parse and hold it, or nothing is written."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "models:\n"
    if text and not text.endswith("\n"):
        text += "\n"
    alias = f'"{entry.alias}"' if "/" in entry.alias else entry.alias
    block = (f"  {alias}:\n    repo_id: {entry.repo_id}\n    revision: \"{entry.revision}\"\n"
             f"    model_type: {model_type}\n")
    new = text + block
    try:
        parsed = spec_mod.loads(new, path)
    except (ConfigurationError, FormatError) as err:
        raise ConfigurationError(f"cannot add {entry.repo_id} to {path} automatically ({err}); add it under "
                                 f"'models:' by hand:\n{block}") from err
    got = parsed.models.get(entry.alias)
    if got is None or got.repo_id != entry.repo_id:
        raise ConfigurationError(f"cannot add {entry.repo_id} to {path} automatically ('models:' is not the "
                                 f"last section); add it under 'models:' by hand:\n{block}")
    store.atomic_write_text(path, new)


__all__ = ["add_model", "parse_ref"]
