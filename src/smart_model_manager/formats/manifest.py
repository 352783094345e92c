"""The volume manifest ``model-metadata.yaml`` (format 2; format 1 is still read; docs/design.md).

It lists every model on a provisioned volume and, per model, **every commit provisioned onto it**, each
with its model type, labels, dimension and every file with its size and sha256, plus the history of the
locks that provisioned the volume (newest last). Several commits of one model live side by side
(``snapshots/<commit>``, the Hugging Face cache layout), so a new lock is rolled out like a new image:
pods pinned to the old lock keep loading the old commit until they are replaced, and rollback works.

The provisioner writes it last (atomic rename, under a volume lock, merged with what was already
recorded), so a commit it lists is complete and verified. Parsing is strict and reports
``file:line: field: what was expected`` (:func:`loads`; the field-by-field reader of formats 1 and 2 is
:mod:`._manifest_read`). Writing lives here too (:func:`update`): one home for the format.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._layout import MANIFEST_NAME as MANIFEST_NAME, TMP_PREFIX
from ..errors import FormatError, ManifestError, MissingFileError
from ..store.hashing import with_prefix
from . import _yaml

FORMAT = 2
MAX_LOCK_HISTORY = 100  # lock records kept (newest last); older ones only stop counting for --keep-locks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str  # "sha256:<hex>"

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": with_prefix(self.sha256)}


@dataclass(frozen=True)
class ModelEntry:
    """One provisioned commit of one model: every file verified and published under ``snapshots/<commit>``.

    ``files`` is every file the snapshot holds: the union of what each lock that provisioned this commit
    pinned (a lock with an ``include:`` pins fewer files of the same commit; the others stay, for the pods
    of the older lock). ``aliases`` are merged into the model's record when the entry is recorded."""

    repo_id: str
    commit: str
    model_type: str
    files: dict[str, FileEntry]
    labels: tuple[str, ...] = ()
    dimension: int | None = None
    aliases: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    provisioned_at: str = ""             # when a provisioner last verified and recorded it
    lock_digest: str | None = None       # the models.lock that last provisioned it (None: `smm import`)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"model_type": self.model_type,
                             "files": {p: f.as_dict() for p, f in sorted(self.files.items())}}
        for key, value in (("labels", list(self.labels)), ("dimension", self.dimension), ("extra", self.extra),
                           ("provisioned_at", self.provisioned_at), ("lock_digest", self.lock_digest)):
            if value:
                d[key] = value
        return d


@dataclass(frozen=True)
class ModelRecord:
    """A model on the volume: every commit provisioned for it."""

    repo_id: str
    commits: dict[str, ModelEntry]
    aliases: tuple[str, ...] = ()

    def get(self, commit: str) -> ModelEntry | None:
        return self.commits.get(commit)

    def latest(self) -> ModelEntry:
        """The most recently provisioned commit. For display only: loads never pick a commit by recency."""
        return max(self.commits.values(), key=lambda e: (e.provisioned_at, e.commit))

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"commits": {c: e.as_dict() for c, e in sorted(self.commits.items())}}
        if self.aliases:
            d["aliases"] = sorted(self.aliases)
        return d


@dataclass(frozen=True)
class LockRecord:
    """A models.lock that provisioned this volume, and the commit it pins per model."""

    digest: str                          # "sha256:<hex>" of the lock file's bytes
    provisioned_at: str
    models: dict[str, str]               # repo id -> commit

    def as_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "provisioned_at": self.provisioned_at, "models": dict(sorted(self.models.items()))}


@dataclass(frozen=True)
class Manifest:
    models: dict[str, ModelRecord]
    locks: tuple[LockRecord, ...] = ()   # newest last
    generated_by: str = ""
    verified_at: str = ""
    path: str | None = None
    format: int = FORMAT                 # the format it was read from (always written as FORMAT)

    @classmethod
    def of(cls, entries: Iterable[ModelEntry], *, locks: Iterable[LockRecord] = (), generated_by: str = "",
           verified_at: str = "") -> Manifest:
        """Build from flat per-commit entries (tests, imports)."""
        man = cls(models={}, generated_by=generated_by, verified_at=verified_at)
        for e in entries:
            man = man.with_entry(e)
        return replace(man, locks=tuple(locks))

    def find(self, name: str) -> ModelRecord | None:
        """By repo id (case-insensitive, like the Hub) or by alias."""
        if name in self.models:
            return self.models[name]
        low = name.lower()
        for rid, rec in self.models.items():
            if rid.lower() == low or name in rec.aliases:
                return rec
        return None

    def entry(self, name: str, commit: str) -> ModelEntry | None:
        rec = self.find(name)
        return rec.get(commit) if rec is not None else None

    def entries(self) -> Iterator[ModelEntry]:
        for _rid, rec in sorted(self.models.items()):
            for _c, e in sorted(rec.commits.items()):
                yield e

    @property
    def lock_digest(self) -> str | None:
        """The lock that provisioned this volume last (None if none did, e.g. only `smm import`)."""
        return self.locks[-1].digest if self.locks else None

    def recent_commits(self, keep_locks: int) -> dict[str, set[str]]:
        """Lower-cased repo id -> the commits the ``keep_locks`` most recently provisioned locks pin."""
        out: dict[str, set[str]] = {}
        for rec in self.locks[len(self.locks) - keep_locks:] if keep_locks > 0 else ():
            for rid, commit in rec.models.items():
                out.setdefault(rid.lower(), set()).add(commit)
        return out

    # -- pure updates (the writer composes them under the volume lock) ---------------------------
    def with_entry(self, entry: ModelEntry) -> Manifest:
        """Record ``entry`` next to the model's other commits. Its files are merged with those already
        recorded for the same commit (see :func:`conflicts`); an alias has one owner across models."""
        models = dict(self.models)
        old_rid = next((r for r in models if r.lower() == entry.repo_id.lower()), None)
        old = models.pop(old_rid) if old_rid is not None else None
        for rid, rec in list(models.items()):
            if set(rec.aliases) & set(entry.aliases):
                models[rid] = replace(rec, aliases=tuple(a for a in rec.aliases if a not in entry.aliases))
        commits = dict(old.commits) if old is not None else {}
        prev = commits.get(entry.commit)
        files = {**prev.files, **entry.files} if prev is not None else dict(entry.files)
        commits[entry.commit] = replace(entry, files=files, aliases=())
        aliases = tuple(sorted(set(old.aliases if old is not None else ()) | set(entry.aliases)))
        models[entry.repo_id] = ModelRecord(entry.repo_id, commits, aliases)
        return replace(self, models=models)

    def with_lock(self, record: LockRecord) -> Manifest:
        """Append (or move to the end, merged) the record of a lock that was just provisioned."""
        same = [r for r in self.locks if r.digest == record.digest]
        models = {**(same[0].models if same else {}), **record.models}
        rest = tuple(r for r in self.locks if r.digest != record.digest)
        return replace(self, locks=(rest + (replace(record, models=models),))[-MAX_LOCK_HISTORY:])

    def without_commits(self, doomed: Mapping[str, Iterable[str]]) -> Manifest:
        """Forget commits (lower-cased repo id -> commits), and the lock records that pin any of them."""
        gone = {(rid.lower(), c) for rid, cs in doomed.items() for c in cs}
        models: dict[str, ModelRecord] = {}
        for rid, rec in self.models.items():
            commits = {c: e for c, e in rec.commits.items() if (rid.lower(), c) not in gone}
            if commits:
                models[rid] = replace(rec, commits=commits)
        locks = tuple(r for r in self.locks if not any((rid.lower(), c) in gone for rid, c in r.models.items()))
        return replace(self, models=models, locks=locks)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": FORMAT, "generated_by": self.generated_by, "verified_at": self.verified_at,
                             "models": {rid: m.as_dict() for rid, m in sorted(self.models.items())}}
        if self.locks:
            d["locks"] = [r.as_dict() for r in self.locks]
        return d

    def dumps(self) -> str:
        return "# Written by smart-model-manager last, after every file was verified. Do not edit.\n" + _yaml.dump(
            self.as_dict())


def conflicts(man: Manifest, entry: ModelEntry) -> list[tuple[str, FileEntry, FileEntry]]:
    """(path, recorded, wanted) for each file ``entry`` pins with other bytes than the volume already
    recorded for the same commit. Provisioning it would change files under the pods that use that commit."""
    prev = man.entry(entry.repo_id, entry.commit)
    if prev is None:
        return []
    return [(rel, prev.files[rel], f) for rel, f in sorted(entry.files.items())
            if rel in prev.files and prev.files[rel] != f]


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# -- parsing ------------------------------------------------------------------------------------------

def loads(text: str, path: str | Path = "<string>") -> Manifest:
    from ._manifest_read import read  # the field-by-field reader builds the types defined above

    return read(_yaml.load(text, path, ManifestError), path)


def load(path: str | os.PathLike[str]) -> Manifest:
    p = Path(path)
    return loads(_yaml.read(p, ManifestError), p)


# -- writing (provisioners only; pods mount the volume read-only) ---------------------------------------

@contextlib.contextmanager
def volume_lock(root: Path, timeout: float = 600) -> Iterator[None]:
    """The one lock every writer of ``root/model-metadata.yaml`` takes (``smm pull``, ``import``, ``prune``)."""
    from filelock import FileLock  # lazily: readers never lock

    (root / ".locks").mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".locks" / "model-metadata.lock"), timeout=timeout):
        yield


def update(root: str | os.PathLike[str], change: Callable[[Manifest], Manifest], *, generated_by: str,
           locked: bool = False) -> Manifest:
    """Read the manifest under the volume lock, apply ``change``, write the result atomically (re-parsed
    first: a bug here must not ship a broken volume). A missing manifest starts empty; a malformed one is
    replaced (with a warning), since no pod can load from it anyway. ``locked``: the caller already holds
    :func:`volume_lock`. Call ``change`` only with what is complete and verified: the manifest's presence
    is the volume's "ready" signal."""
    from ..store import cache as store

    root = Path(root)
    path = root / MANIFEST_NAME
    with contextlib.nullcontext() if locked else volume_lock(root):
        for leftover in root.glob(f"{TMP_PREFIX}{MANIFEST_NAME}.*"):  # a writer killed mid-write
            leftover.unlink(missing_ok=True)
        current = Manifest(models={})
        if path.is_file():
            try:
                current = load(path)
            except FormatError as err:
                log.warning("replacing the malformed manifest %s (its other records are lost): %s", path, err)
        new = replace(change(current), generated_by=generated_by, verified_at=now_iso(), path=str(path))
        text = new.dumps()
        loads(text, path)
        store.atomic_write_text(path, text)
    return new


def record(root: str | os.PathLike[str], entries: Iterable[ModelEntry], *, generated_by: str,
           lock_digest: str | None = None) -> Manifest:
    """Record freshly provisioned commits (and, with ``lock_digest``, the lock that pinned them)."""
    at = now_iso()
    stamped = [replace(e, provisioned_at=at, lock_digest=lock_digest) for e in entries]

    def change(man: Manifest) -> Manifest:
        from ..store import cache as store

        for e in stamped:  # checked under the volume lock, which `smm prune` holds while it deletes commits
            snap = store.repo_dir(Path(root), e.repo_id) / "snapshots" / e.commit
            if not snap.is_dir():
                raise MissingFileError(f"{e.repo_id}: snapshot {e.commit} vanished before it was recorded (a "
                                       "concurrent `smm prune`?); nothing was recorded: provision again", path=snap)
            man = man.with_entry(e)
        if lock_digest and stamped:
            man = man.with_lock(LockRecord(lock_digest, at, {e.repo_id: e.commit for e in stamped}))
        return man

    return update(root, change, generated_by=generated_by)
