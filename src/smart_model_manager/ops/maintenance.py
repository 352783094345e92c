"""What is in a models folder (``smm ls``) and what can go (``smm prune``). Layer 4: reads the store layout.

Prune works in two steps, like ``huggingface-cli delete-cache``: :func:`plan_prune` computes what is
unreferenced, with the bytes each item holds, and changes nothing; :func:`execute_prune` deletes it.
Kept, always: every snapshot a ref points to, every commit models.lock pins, every commit the
volume manifest records (with ``keep_locks=N``: only those the N most recently provisioned locks pin, so
a volume does not grow by one model version per rollout forever), and every blob one of those snapshots
links to. Removable:

* ``revision``  a snapshot no ref points to and nothing pins;
* ``blob``      a blob no kept snapshot links to (what makes a removed revision actually free space);
* ``temp``      ``.tmp-*`` / ``*.incomplete`` leftovers of interrupted writes.

Blobs and temps younger than ``min_age`` are kept: they may belong to a write in progress in another
process. huggingface_hub renames a finished download into ``blobs/`` a moment *before* it links it from
the snapshot and takes none of our locks, so an unlinked fresh blob is not proof of an orphan.

Deletion re-plans each repo under its write lock (``store.repo_lock``) and deletes only what is still
removable, so a concurrent ``smm pull`` that links a blob after the plan keeps it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..formats import manifest as manifest_mod
from ..formats.lockfile import Lock
from ..store import cache as store

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".incomplete"
DEFAULT_MIN_AGE = 3600.0  # seconds; a download stalled for an hour is not coming back


# -- listing ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Revision:
    commit: str
    refs: tuple[str, ...]    # refs pointing to it (main, v1.0, pr/1)
    files: int
    size: int                # bytes of the files it holds (blobs it links to, counted once)
    locked: bool             # the commit models.lock pins for this repo
    in_manifest: bool        # the commit the volume manifest lists


@dataclass(frozen=True)
class RepoListing:
    repo_id: str
    location: str            # the root folder (cache or volume)
    path: str                # models--org--name
    size_on_disk: int        # every regular file under the repo folder
    revisions: tuple[Revision, ...]
    lock_status: str         # locked | locked-commit-absent | unlocked | no-lock
    alias: str | None = None
    locked_commit: str | None = None


@dataclass(frozen=True)
class Listing:
    location: str
    repos: tuple[RepoListing, ...]
    absent: tuple[tuple[str, str, str], ...] = ()   # (alias, repo_id, commit) locked but not here at all
    manifest: str | None = None
    locks: tuple[manifest_mod.LockRecord, ...] = ()   # a volume's lock history, newest last (prune --keep-locks)

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "manifest": self.manifest,
                "repos": [asdict(r) for r in self.repos],
                "absent": [{"alias": a, "repo_id": r, "commit": c} for a, r, c in self.absent],
                "locks": [r.as_dict() for r in self.locks]}


def _regular_bytes(path: Path) -> int:
    """Apparent size of the regular files under ``path`` (links are not followed, not counted)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if not stat.S_ISDIR(st.st_mode):
        return 0
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def _refs(rdir: Path) -> dict[str, list[str]]:
    """commit -> names of the refs pointing to it."""
    out: dict[str, list[str]] = {}
    refs = rdir / "refs"
    for dirpath, _dirs, files in os.walk(refs):
        for f in files:
            if f.startswith(store.TMP_PREFIX):
                continue
            p = Path(dirpath) / f
            try:
                commit = p.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                continue
            out.setdefault(commit, []).append(p.relative_to(refs).as_posix())
    return out


def _snapshots(rdir: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(rdir / "snapshots")
                      if e.is_dir(follow_symlinks=False) and not e.name.startswith(store.TMP_PREFIX))
    except OSError:
        return []


def _linked_blobs(snap: Path) -> dict[str, int]:
    """Real path -> size of every file a snapshot holds (link targets resolved)."""
    out: dict[str, int] = {}
    for dirpath, _dirs, files in os.walk(snap):
        for f in files:
            p = os.path.join(dirpath, f)
            real = os.path.realpath(p)
            try:
                out[real] = os.stat(real).st_size
            except OSError:
                continue  # dangling: nothing to keep
    return out


def _read_manifest(root: Path) -> manifest_mod.Manifest | None:
    path = root / manifest_mod.MANIFEST_NAME
    return manifest_mod.load(path) if path.is_file() else None  # malformed -> ManifestError: refuse to guess


def _repo_folders(root: Path) -> list[tuple[str, Path]]:
    out = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    for e in entries:
        rid = store.repo_id_from_folder(e.name)
        if rid and e.is_dir(follow_symlinks=False):
            out.append((rid, Path(e.path)))
    return out


def list_models(root: str | os.PathLike[str], *, lock: Lock | None = None) -> Listing:
    """Every repo under ``root`` with its revisions, refs, sizes and lock status. Reads only."""
    root = Path(root)
    man = _read_manifest(root)
    repos: list[RepoListing] = []
    present: set[str] = set()
    for rid, rdir in _repo_folders(root):
        entry = lock.find(rid) if lock is not None else None
        listed = man.find(rid) if man is not None else None
        refs = _refs(rdir)
        revs = []
        for commit in _snapshots(rdir):
            blobs = _linked_blobs(rdir / "snapshots" / commit)
            revs.append(Revision(commit=commit, refs=tuple(sorted(refs.get(commit, ()))), files=len(blobs),
                                 size=sum(blobs.values()), locked=entry is not None and entry.commit == commit,
                                 in_manifest=listed is not None and commit in listed.commits))
        if lock is None:
            status = "no-lock"
        elif entry is None:
            status = "unlocked"
        else:
            present.add(rid.lower())
            status = "locked" if any(r.locked for r in revs) else "locked-commit-absent"
        repos.append(RepoListing(repo_id=rid, location=str(root), path=str(rdir), size_on_disk=_regular_bytes(rdir),
                                 revisions=tuple(revs), lock_status=status,
                                 alias=entry.alias if entry is not None else None,
                                 locked_commit=entry.commit if entry is not None else None))
    absent = tuple((e.alias, e.repo_id, e.commit) for e in (lock.models.values() if lock else ())
                   if e.repo_id.lower() not in present)
    return Listing(location=str(root), repos=tuple(repos), absent=tuple(sorted(absent)),
                   manifest=man.path if man is not None else None, locks=man.locks if man is not None else ())


# -- prune --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PruneItem:
    kind: str                # revision | blob | temp
    repo_id: str | None      # None for leftovers at the root
    path: str
    bytes: int
    reason: str


@dataclass(frozen=True)
class PrunePlan:
    root: str
    items: tuple[PruneItem, ...]
    kept_revisions: int
    keep_locks: int | None = None

    @property
    def total_bytes(self) -> int:
        return sum(i.bytes for i in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {"root": self.root, "total_bytes": self.total_bytes, "kept_revisions": self.kept_revisions,
                "keep_locks": self.keep_locks, "items": [asdict(i) for i in self.items]}


@dataclass(frozen=True)
class PruneResult:
    freed_bytes: int
    deleted: tuple[PruneItem, ...]
    skipped: tuple[tuple[PruneItem, str], ...]   # (item, why it was kept after all)

    def as_dict(self) -> dict[str, Any]:
        return {"freed_bytes": self.freed_bytes, "deleted": [asdict(i) for i in self.deleted],
                "skipped": [{"item": asdict(i), "reason": r} for i, r in self.skipped]}


def _is_temp(name: str) -> bool:
    return name.startswith(store.TMP_PREFIX) or name.endswith(TEMP_SUFFIX)


def _old_enough(path: Path, min_age: float, now: float) -> bool:
    try:
        return now - os.lstat(path).st_mtime >= min_age
    except OSError:
        return False


def _temps(top: Path, repo_id: str | None, min_age: float, now: float, recurse: bool) -> list[PruneItem]:
    out: list[PruneItem] = []
    for dirpath, dirs, files in os.walk(top):
        for name in sorted(dirs + files):
            p = Path(dirpath) / name
            if _is_temp(name) and _old_enough(p, min_age, now):
                out.append(PruneItem("temp", repo_id, str(p), _regular_bytes(p),
                                     f"leftover of an interrupted write, untouched for {now - os.lstat(p).st_mtime:.0f}s"))
        dirs[:] = [d for d in dirs if not _is_temp(d)] if recurse else []
    return out


def _plan_repo(rid: str, rdir: Path, pinned: set[str], min_age: float, now: float) -> tuple[list[PruneItem], int]:
    refs = _refs(rdir)
    keep: dict[str, int] = {}
    items: list[PruneItem] = []
    kept = 0
    for commit in _snapshots(rdir):
        snap = rdir / "snapshots" / commit
        if commit in refs or commit in pinned:
            kept += 1
            keep.update(_linked_blobs(snap))
        else:
            items.append(PruneItem("revision", rid, str(snap), _regular_bytes(snap),
                                   "no ref points to it; neither models.lock nor the manifest's kept records pin it"))
    try:
        blobs = sorted(os.scandir(rdir / "blobs"), key=lambda e: e.name)
    except OSError:
        blobs = []
    for e in blobs:
        if _is_temp(e.name):
            continue  # a temp: handled below, with its age check
        real = os.path.realpath(e.path)
        if real not in keep and e.is_file(follow_symlinks=False) and _old_enough(Path(e.path), min_age, now):
            items.append(PruneItem("blob", rid, e.path, e.stat(follow_symlinks=False).st_size,
                                   "no kept snapshot links to it"))
    doomed = tuple(i.path + os.sep for i in items if i.kind == "revision")
    items.extend(t for t in _temps(rdir, rid, min_age, now, recurse=True) if not t.path.startswith(doomed))
    return items, kept


def _pins(root: Path, lock: Lock | None, keep_locks: int | None = None) -> dict[str, set[str]]:
    """Lower-cased repo id -> commits to keep: the lock's, and the manifest's (every recorded commit, or with
    ``keep_locks`` only those the N most recently provisioned locks pin)."""
    pins: dict[str, set[str]] = {}
    for e in (lock.models.values() if lock is not None else ()):
        pins.setdefault(e.repo_id.lower(), set()).add(e.commit)
    man = _read_manifest(root)
    if keep_locks is not None:
        if man is None:
            raise ConfigurationError(f"--keep-locks counts the locks a volume's {manifest_mod.MANIFEST_NAME} "
                                     f"records, and {root} has none; use --lock to say what to keep")
        for rid, commits in man.recent_commits(keep_locks).items():
            pins.setdefault(rid, set()).update(commits)
    else:
        for rid, m in (man.models.items() if man is not None else ()):
            pins.setdefault(rid.lower(), set()).update(m.commits)
    return pins


def plan_prune(root: str | os.PathLike[str], *, lock: Lock | None = None, keep_locks: int | None = None,
               min_age: float = DEFAULT_MIN_AGE, now: float | None = None) -> PrunePlan:
    """What prune would delete, with bytes. Changes nothing. ``keep_locks=N`` (volumes): commits recorded in
    the manifest that none of the N most recently provisioned locks (nor ``lock``, nor a ref) pins go too."""
    root = Path(root)
    now = time.time() if now is None else now
    pins = _pins(root, lock, keep_locks)
    items: list[PruneItem] = []
    kept = 0
    for rid, rdir in _repo_folders(root):
        repo_items, repo_kept = _plan_repo(rid, rdir, pins.get(rid.lower(), set()), min_age, now)
        items.extend(repo_items)
        kept += repo_kept
    items.extend(_temps(root, None, min_age, now, recurse=False))
    return PrunePlan(root=str(root), items=tuple(items), kept_revisions=kept, keep_locks=keep_locks)


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def execute_prune(plan: PrunePlan, *, lock: Lock | None = None,
                  min_age: float = DEFAULT_MIN_AGE) -> PruneResult:
    """Delete the plan's items that are still removable, each repo under its write lock.

    On a volume, commits the manifest records are forgotten by the manifest first (under the volume lock),
    then deleted: a reader never sees a recorded commit whose snapshot is gone."""
    root = Path(plan.root)
    doomed: dict[str, set[str]] = {}
    for item in plan.items:
        if item.kind == "revision" and item.repo_id is not None:
            doomed.setdefault(item.repo_id.lower(), set()).add(Path(item.path).name)
    keep = plan.keep_locks
    volume = (root / manifest_mod.MANIFEST_NAME).is_file()
    deleted: list[PruneItem] = []
    skipped: list[tuple[PruneItem, str]] = []
    # On a volume the whole execution holds the manifest lock: a pull records a commit only while its
    # snapshot exists (checked under that lock), so no commit is recorded after its files were deleted.
    with manifest_mod.volume_lock(root) if volume else contextlib.nullcontext():
        if keep is not None and volume and doomed:
            from .pull import generated_by

            def forget(man: manifest_mod.Manifest) -> manifest_mod.Manifest:
                still = _pins_of(man, lock, keep)  # re-decided under the lock: a pull may have landed
                return man.without_commits({rid: cs - still.get(rid, set()) for rid, cs in doomed.items()})

            manifest_mod.update(root, forget, generated_by=generated_by(), locked=True)
        pins = _pins(root, lock, keep)
        by_repo: dict[str | None, list[PruneItem]] = {}
        for item in plan.items:
            by_repo.setdefault(item.repo_id, []).append(item)
        for rid, items in by_repo.items():
            if rid is None:
                still = {i.path: i for i in _temps(root, None, min_age, time.time(), recurse=False)}
                _apply(items, still, deleted, skipped)
                continue
            with store.repo_lock(root, rid):
                fresh, _kept = _plan_repo(rid, store.repo_dir(root, rid), pins.get(rid.lower(), set()), min_age,
                                          time.time())
                _apply(items, {i.path: i for i in fresh}, deleted, skipped)
    freed = sum(i.bytes for i in deleted)
    log.info("pruned %d item(s) under %s, freed %d bytes (%d skipped)", len(deleted), root, freed, len(skipped))
    return PruneResult(freed_bytes=freed, deleted=tuple(deleted), skipped=tuple(skipped))


def _pins_of(man: manifest_mod.Manifest, lock: Lock | None, keep_locks: int) -> dict[str, set[str]]:
    pins = man.recent_commits(keep_locks)
    for e in (lock.models.values() if lock is not None else ()):
        pins.setdefault(e.repo_id.lower(), set()).add(e.commit)
    return pins


def _apply(items: list[PruneItem], still: dict[str, PruneItem], deleted: list[PruneItem],
           skipped: list[tuple[PruneItem, str]]) -> None:
    # Revisions first: removing a snapshot is what orphans its blobs; temps and blobs after.
    for item in sorted(items, key=lambda i: (i.kind != "revision", i.path)):
        now_item = still.get(item.path)
        if now_item is None or now_item.kind != item.kind:
            skipped.append((item, "no longer removable (something started using it after the plan)"))
            continue
        try:
            _delete(Path(item.path))
        except FileNotFoundError:
            skipped.append((item, "already gone"))
            continue
        deleted.append(now_item)
