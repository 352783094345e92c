"""Check a models folder against what it claims to hold (layer 4): a report, never an exception for findings.

Two kinds of folder (both standard Hugging Face hub caches, docs/design.md):

* a provisioned **volume** holds ``model-metadata.yaml`` (several commits per model, one per lock): with a
  lock, the commits it pins must be recorded (with its files) and are checked on disk; without one, every
  recorded commit is;
* a local **cache** has no manifest: with a lock, every pinned snapshot is checked against the lock;
  without one, only the structure (refs point to snapshots, snapshot links point to blobs).

Finding kinds, each with one meaning:

========== ==========================================================================================
missing    a listed file, snapshot, model or the manifest itself is absent (or a link is dangling)
corrupt    a file exists with the wrong size (quick and full) or the wrong sha256 (full only)
stale      the manifest disagrees with models.lock: its commit not recorded, a pinned file recorded otherwise
extra      on disk but not recorded: a file in a snapshot, a snapshot, a model not in the manifest
malformed  the manifest or the lock cannot be parsed (file and line)
outside    a path resolves outside the folder being checked (a symlink leaving the volume or cache root:
           the manifest, a snapshot or a file); loading refuses it too
========== ==========================================================================================

Every finding is an ``error`` (``report.ok`` is False) except leftovers that cannot change what is
loaded, which are ``warning``: an unrecorded snapshot, a model folder the manifest does not list, a
manifest entry the lock does not pin. A startup probe must not fail on what ``smm prune`` removes.
An unlisted file *inside* the listed snapshot is an error: a loader could pick it up (an extra
``model.safetensors`` wins over a listed ``pytorch_model.bin``).

``quick`` uses ``os.stat`` only (it is the Kubernetes startup probe: milliseconds for a volume of
several models); ``full`` re-hashes every file, each blob once. Nothing is ever written, so this
works on a read-only mount. The CLI maps the report to exit codes (0 ok, 1 findings).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, FormatError
from ..formats import lockfile, manifest as manifest_mod
from ..formats.manifest import FileEntry
from ..store.cache import resolves_outside
from ..store.hashing import sha256_file, strip_prefix, with_prefix

KINDS = ("missing", "corrupt", "stale", "extra", "malformed", "outside")
MODES = ("quick", "full")
_SKIP_SUFFIXES = (".incomplete",)


@dataclass(frozen=True)
class Finding:
    kind: str                  # one of KINDS
    model: str | None          # repo id, or None for folder-level findings
    file: str | None           # the path the finding is about
    message: str
    expected: str | None = None
    actual: str | None = None
    line: int | None = None    # malformed only: 1-based line in ``file``
    severity: str = "error"    # error | warning (see the module docstring)

    @property
    def where(self) -> str:
        if self.file is None:
            return "-"
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ValidationReport:
    ok: bool                   # no error findings (warnings allowed)
    findings: tuple[Finding, ...]
    models_checked: int
    files_checked: int
    seconds: float
    directory: str = ""
    mode: str = "quick"
    manifest: str | None = None  # the manifest checked, if any
    lock: str | None = None      # the lock compared against, if any

    def by_kind(self, kind: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == kind)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["findings"] = [f.as_dict() for f in self.findings]
        d["counts"] = {k: len(self.by_kind(k)) for k in KINDS}
        d["errors"], d["warnings"] = len(self.errors), len(self.warnings)
        return d


@dataclass
class _Run:
    root: Path
    full: bool
    findings: list[Finding] = field(default_factory=list)
    models: int = 0
    files: int = 0
    hashed: dict[str, str] = field(default_factory=dict)  # real path -> sha256 hex (a blob is hashed once)

    def add(self, kind: str, model: str | None, file: str | os.PathLike[str] | None, message: str,
            expected: Any = None, actual: Any = None, line: int | None = None, severity: str = "error") -> None:
        self.findings.append(Finding(kind, model, None if file is None else str(file), message,
                                     None if expected is None else str(expected),
                                     None if actual is None else str(actual), line, severity))

    def sha256(self, path: Path) -> str:
        real = os.path.realpath(path)
        if real not in self.hashed:
            self.hashed[real] = sha256_file(real)
        return self.hashed[real]


def validate(directory: str | os.PathLike[str], *, lock: lockfile.Lock | str | os.PathLike[str] | None = None,
             mode: str = "quick", require_manifest: bool | None = None) -> ValidationReport:
    """Validate ``directory`` (a volume or a cache). ``lock`` is a Lock or a path to models.lock.

    ``require_manifest``: True = it must be a volume (a missing manifest is a finding); False = treat it
    as a cache even if a manifest is present; None = decide by the manifest's presence.
    Raises ConfigurationError only for bad arguments (unknown mode, a lock path that does not exist).
    """
    if mode not in MODES:
        raise ConfigurationError(f"mode {mode!r} is not valid; valid values: {', '.join(MODES)}")
    t0 = time.perf_counter()
    root = Path(directory)
    run = _Run(root=root, full=mode == "full")
    lock_obj = _load_lock(run, lock)
    man_path = root / manifest_mod.MANIFEST_NAME
    man: manifest_mod.Manifest | None = None
    if not root.is_dir():
        run.add("missing", None, root, f"{root} does not exist or is not a folder (is the volume mounted? "
                "set SMM_VOLUME_DIR or pass --dir)")
    elif require_manifest is not False and man_path.is_file():
        _check_inside(run, None, man_path, f"{manifest_mod.MANIFEST_NAME}")
        man = _load_manifest(run, man_path)
        if man is not None:
            _check_volume(run, man, lock_obj)
        elif lock_obj is not None:  # unparsable manifest: still say what the lock's files look like
            _check_against_lock(run, lock_obj)
    elif require_manifest:
        run.add("missing", None, man_path, f"no {manifest_mod.MANIFEST_NAME} in {root}: the volume was never "
                "provisioned or provisioning did not finish (the manifest is written last); run "
                "`smm pull --target DIR`")
    elif lock_obj is not None:
        _check_against_lock(run, lock_obj)
    elif _repo_dirs(root):
        _check_structure(run)
    else:
        run.add("missing", None, man_path, f"{root} holds neither {manifest_mod.MANIFEST_NAME} nor any "
                "models--* folder; pass --lock to check a cache against models.lock")
    return ValidationReport(
        ok=not any(f.severity == "error" for f in run.findings), findings=tuple(run.findings),
        models_checked=run.models, files_checked=run.files, seconds=round(time.perf_counter() - t0, 6), directory=str(root), mode=mode,
        manifest=str(man_path) if man is not None else None,
        lock=(lock_obj.path if lock_obj is not None else None))


def wait_until_valid(directory: str | os.PathLike[str], *, lock: lockfile.Lock | str | os.PathLike[str] | None = None,
                     mode: str = "quick", timeout: float = 600.0, interval: float = 2.0,
                     require_manifest: bool | None = True, progress: Callable[[ValidationReport, float], None] | None = None,
                     progress_every: float = 10.0) -> ValidationReport:
    """Poll :func:`validate` until it is ok or ``timeout`` seconds pass; return the last report (``ok`` is
    False on timeout). The Kubernetes init container: a pod starts only once the volume holds, verified,
    what *its* lock pins. ``interval`` is clamped to 0.05-10 s; ``progress(report, elapsed)`` is called on
    the first failing poll and then at least every ``progress_every`` seconds. In ``full`` mode each poll is
    quick first and re-hashes only once quick passes."""
    interval = min(max(interval, 0.05), 10.0)
    t0 = time.monotonic()
    last_progress: float | None = None
    while True:
        report = validate(directory, lock=lock, mode="quick", require_manifest=require_manifest)
        if report.ok and mode == "full":
            report = validate(directory, lock=lock, mode="full", require_manifest=require_manifest)
        elapsed = time.monotonic() - t0
        if report.ok or elapsed >= timeout:
            return report
        if progress is not None and (last_progress is None or elapsed - last_progress >= progress_every - 1e-6):
            progress(report, elapsed)
            last_progress = elapsed
        time.sleep(max(0.0, min(interval, timeout - elapsed, progress_every)))


# -- loading ------------------------------------------------------------------------------------------

def _load_lock(run: _Run, lock: lockfile.Lock | str | os.PathLike[str] | None) -> lockfile.Lock | None:
    if lock is None or isinstance(lock, lockfile.Lock):
        return lock
    try:
        return lockfile.load(Path(lock))  # a path that does not exist -> ConfigurationError (usage)
    except FormatError as err:
        run.add("malformed", None, err.path or lock, err.reason, line=err.line)
        return None


def _load_manifest(run: _Run, path: Path) -> manifest_mod.Manifest | None:
    try:
        return manifest_mod.load(path)
    except FormatError as err:
        run.add("malformed", None, err.path or path, err.reason, line=err.line)
        return None


# -- checks -------------------------------------------------------------------------------------------

def _repo_dirs(root: Path) -> dict[str, Path]:
    """Lower-cased repo id -> models--* folder. Hidden and temp entries are not repos."""
    out: dict[str, Path] = {}
    try:
        with os.scandir(root) as it:
            for e in it:
                if e.name.startswith("models--") and e.is_dir():
                    out[e.name[len("models--"):].replace("--", "/").lower()] = Path(e.path)
    except OSError:
        pass
    return out


def _walk_files(folder: Path, prefix: str = "", seen: set[str] | None = None) -> Iterator[str]:
    """Relative POSIX paths of every non-directory entry (links included, dangling or not).

    Directory links are followed, like store.snapshot_files; one that leads back to a folder already
    walked (a cycle) is yielded as an entry instead, so it is reported once rather than walked forever."""
    seen = {os.path.realpath(folder)} if seen is None else seen
    with os.scandir(folder) as it:
        for e in it:
            rel = prefix + e.name
            if e.is_dir():
                real = os.path.realpath(e.path)
                if real not in seen:
                    seen.add(real)
                    yield from _walk_files(Path(e.path), rel + "/", seen)
                    continue
            yield rel


def _listing(run: _Run, model: str | None, folder: Path) -> list[str]:
    """Sorted _walk_files, or a finding (and nothing) when the folder cannot be listed."""
    try:
        return sorted(_walk_files(folder))
    except OSError as err:
        run.add("missing", model, folder, f"{folder} cannot be listed: {err.strerror or err}")
        return []


def _check_snapshot(run: _Run, model: str, snap: Path, files: dict[str, FileEntry], what: str) -> None:
    """Every pinned file present with its size (and sha256 in full mode); unlisted files are extra."""
    run.models += 1
    if not snap.is_dir():
        run.add("missing", model, snap, f"{model}: snapshot {snap.name} listed in {what} is absent",
                expected=snap.name)
        return
    if not _check_inside(run, model, snap, f"{model}: snapshot {snap.name}"):
        return  # every file below is outside too: one finding says it
    for rel, entry in sorted(files.items()):
        run.files += 1
        p = snap / rel
        try:
            st = os.stat(p)
        except FileNotFoundError:
            dangling = os.path.islink(p)
            why = "is a link to a missing blob" if dangling else "is absent"
            run.add("missing", model, p, f"{model}: {rel} {why}", expected=f"{entry.size} bytes {entry.sha256}")
            continue
        except OSError as err:
            run.add("missing", model, p, f"{model}: {rel} cannot be read: {err.strerror}")
            continue
        if not _check_inside(run, model, p, f"{model}: {rel}"):
            continue
        if not stat.S_ISREG(st.st_mode):
            run.add("corrupt", model, p, f"{model}: {rel} is not a regular file", expected="a file")
        elif st.st_size != entry.size:
            run.add("corrupt", model, p, f"{model}: {rel} has the wrong size", expected=f"{entry.size} bytes",
                    actual=f"{st.st_size} bytes")
        elif run.full:
            try:
                actual = run.sha256(p)
            except OSError as err:
                run.add("missing", model, p, f"{model}: {rel} cannot be read: {err.strerror}")
                continue
            if actual != strip_prefix(entry.sha256):
                run.add("corrupt", model, p, f"{model}: {rel} has the wrong sha256", expected=entry.sha256,
                        actual=with_prefix(actual))
    for rel in _listing(run, model, snap):
        if rel not in files:
            run.add("extra", model, snap / rel, f"{model}: {rel} is in the snapshot but not listed in {what}")


def _check_inside(run: _Run, model: str | None, path: Path, what: str) -> bool:
    """False, with an ``outside`` finding, when ``path`` resolves outside the folder being checked."""
    real = resolves_outside(run.root, path)
    if real is None:
        return True
    run.add("outside", model, path, f"{what} resolves outside {run.root}; loading refuses it (remove the "
            "link or re-provision)", expected=f"a path inside {run.root}", actual=real)
    return False


def _check_volume(run: _Run, man: manifest_mod.Manifest, lock: lockfile.Lock | None) -> None:
    """With a lock: the commits it pins (and nothing else: other commits belong to other locks' pods).
    Without: every recorded commit of every model. Unrecorded snapshots and models are warnings."""
    repos = _repo_dirs(run.root)
    wanted = _compare_lock(run, man, lock) if lock is not None else {
        rid: set(rec.commits) for rid, rec in man.models.items()}
    for rid, rec in sorted(man.models.items()):
        rdir = repos.get(rid.lower())
        commits = sorted(wanted.get(rid, ()))
        if rdir is None:
            if commits:
                run.models += 1
                run.add("missing", rid, run.root / f"models--{rid.replace('/', '--')}",
                        f"{rid}: listed in the manifest but its folder is absent", expected=", ".join(commits))
            continue
        for commit in commits:
            _check_snapshot(run, rid, rdir / "snapshots" / commit, rec.commits[commit].files, "the manifest")
        for other in _snapshot_names(rdir):
            if other not in rec.commits:
                run.add("extra", rid, rdir / "snapshots" / other,
                        f"{rid}: snapshot {other} is not recorded in the manifest (recorded: "
                        f"{', '.join(c[:12] for c in sorted(rec.commits))}); `smm prune` removes it",
                        severity="warning")
    listed = {rid.lower() for rid in man.models}
    for low, rdir in sorted(repos.items()):
        if low not in listed:
            rid = rdir.name[len("models--"):].replace("--", "/")
            run.add("extra", rid, rdir, f"{rid} ({rdir.name}) is on the volume but not listed in the manifest",
                    severity="warning")


def _snapshot_names(rdir: Path) -> list[str]:
    try:
        with os.scandir(rdir / "snapshots") as it:
            return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def _describe(entry: FileEntry | None) -> str | None:
    return None if entry is None else f"{entry.size} bytes {entry.sha256}"


def _compare_lock(run: _Run, man: manifest_mod.Manifest, lock: lockfile.Lock) -> dict[str, set[str]]:
    """Every commit the lock pins must be recorded, with the lock's files among the recorded ones (a
    commit records the union of what every lock that provisioned it pinned). Returns repo id -> the
    recorded commits to check on disk. The lock's digest is not compared: a volume provisioned by several
    locks validates against each of them, and contents, not bytes of the lock file, decide."""
    where = man.path or str(run.root / manifest_mod.MANIFEST_NAME)
    lock_name = lock.path or "the lock"
    pinned = {le.repo_id.lower() for le in lock.models.values()}
    for rid in sorted(man.models):
        if rid.lower() not in pinned:
            run.add("stale", rid, where, f"{rid} is listed in the manifest but {lock_name} does not pin it "
                    "(left from an older lock?)", severity="warning")
    out: dict[str, set[str]] = {}
    for alias, le in sorted(lock.models.items()):
        rec = man.find(le.repo_id)
        if rec is None:
            run.add("missing", le.repo_id, where, f"{le.repo_id} (locked as {alias!r}) is not on the volume",
                    expected=le.commit)
            continue
        me = rec.get(le.commit)
        if me is None:
            held = ", ".join(sorted(rec.commits))
            run.add("stale", le.repo_id, where, f"{le.repo_id}: the volume holds other commits than {lock_name} "
                    f"pins; provision it with `smm pull --target DIR` (the Job of this lock)", expected=le.commit,
                    actual=held)
            continue
        for rel in sorted(le.files):
            lf, mf = le.files[rel], me.files.get(rel)
            if lf != mf:
                run.add("stale", le.repo_id, where, f"{le.repo_id}: {rel} differs between {lock_name} and the "
                        "manifest", expected=_describe(lf), actual=_describe(mf) or "not listed")
        out.setdefault(rec.repo_id, set()).add(le.commit)
    return out


def _check_against_lock(run: _Run, lock: lockfile.Lock) -> None:
    repos = _repo_dirs(run.root)
    for alias, le in sorted(lock.models.items()):
        rdir = repos.get(le.repo_id.lower())
        if rdir is None:
            run.models += 1
            run.add("missing", le.repo_id, run.root / f"models--{le.repo_id.replace('/', '--')}",
                    f"{le.repo_id} (locked as {alias!r}) is not in {run.root}; fetch it with `smm pull`",
                    expected=le.commit)
            continue
        _check_snapshot(run, le.repo_id, rdir / "snapshots" / le.commit, le.files, "models.lock")


def _check_structure(run: _Run) -> None:
    """No manifest, no lock: refs must point to snapshots and links to blobs; full also hashes sha256 blobs."""
    for low, rdir in sorted(_repo_dirs(run.root).items()):
        run.models += 1
        refs = rdir / "refs"
        for rel in _listing(run, low, refs) if refs.is_dir() else []:
            try:
                commit = (refs / rel).read_text(encoding="utf-8", errors="replace").strip()
            except OSError as err:
                run.add("missing", low, refs / rel, f"{low}: ref {rel} cannot be read: {err.strerror or err}")
                continue
            if not (rdir / "snapshots" / commit).is_dir():
                run.add("missing", low, refs / rel, f"{low}: ref {rel} points to snapshot {commit[:12]}, which "
                        "is absent", expected=commit)
        for name in _snapshot_names(rdir):
            snap = rdir / "snapshots" / name
            if not _check_inside(run, low, snap, f"{low}: snapshot {name[:12]}"):
                continue  # every file below is outside too: one finding says it (same rule as with a lock)
            for rel in _listing(run, low, snap):
                if rel.endswith(_SKIP_SUFFIXES):
                    continue
                run.files += 1
                p = snap / rel
                if not p.exists():
                    run.add("missing", low, p, f"{low}: {name[:12]}/{rel} is a link to a missing blob")
                    continue
                if not _check_inside(run, low, p, f"{low}: {name[:12]}/{rel}"):
                    continue
                blob = os.path.basename(os.path.realpath(p))
                if run.full and len(blob) == 64 and all(c in "0123456789abcdef" for c in blob):
                    actual = run.sha256(p)
                    if actual != blob:  # blobs named by sha256 (LFS files, our imports) carry their digest
                        run.add("corrupt", low, p, f"{low}: {name[:12]}/{rel} has the wrong sha256",
                                expected=with_prefix(blob), actual=with_prefix(actual))
