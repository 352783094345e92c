"""The persistent-volume source: a read-only, pre-provisioned HF-cache folder plus model-metadata.yaml.

Reads only. No lock files, refs or ``.no_exist`` markers are written, so a volume mounted read-only
just works (huggingface_hub #3394, #2797 are what happens otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigurationError, IntegrityError
from ..formats import manifest as manifest_mod
from ..store import cache as store
from .base import Request, Resolved, Unavailable, Verified
from .verify import verify_folder

if TYPE_CHECKING:
    from ..formats.manifest import FileEntry


class VolumeSource:
    """Loads exactly the commit the caller's lock pins (``SMM_LOCK``; a pod mounts its own lock), never
    "whatever the volume has now": the volume keeps several commits per model side by side, one per lock
    being rolled out or back. Without a lock: a 40-hex ``revision``, else the model's only recorded commit;
    several recorded commits and nothing to choose by is a ConfigurationError (picking the newest would make
    a restarting pod switch models before anyone rolled it out)."""

    name = "volume"

    def __init__(self, volume_dir: Path):
        self.volume_dir = Path(volume_dir)
        self._manifest: manifest_mod.Manifest | None = None
        self._stamp: tuple[int, int, int] | None = None

    @property
    def manifest_path(self) -> Path:
        return self.volume_dir / manifest_mod.MANIFEST_NAME

    def manifest(self) -> manifest_mod.Manifest:
        """Parsed once per version of the file: a Job may add a commit while a pod waits for it."""
        try:
            st = self.manifest_path.stat()
        except OSError:
            raise Unavailable(f"no volume manifest at {self.manifest_path}",
                              hint="provision the volume with `smm pull --target DIR` or set SMM_VOLUME_DIR") from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._manifest is None or stamp != self._stamp:
            store.check_inside(self.volume_dir, self.manifest_path, "the volume manifest")
            self._manifest = manifest_mod.load(self.manifest_path)  # malformed -> ManifestError (fatal)
            self._stamp = stamp
        return self._manifest

    def resolve(self, request: Request) -> Resolved:
        man = self.manifest()
        record = man.find(request.repo_id) or man.find(request.name)
        if record is None:
            listed = ", ".join(sorted(man.models)) or "nothing"
            raise Unavailable(f"{request.repo_id} is not on the volume {self.volume_dir} (its manifest lists: {listed})",
                              hint="add it to models.lock and re-provision with `smm pull --target`")
        entry = self._pick(record, request)
        pinned = request.pinned
        if pinned is not None and pinned.commit == entry.commit:
            self._check_pins(entry, dict(pinned.files))
        snap = store.repo_dir(self.volume_dir, record.repo_id) / "snapshots" / entry.commit
        if not snap.is_dir():
            raise IntegrityError(
                f"{record.repo_id}: the manifest {self.manifest_path} lists commit {entry.commit} but {snap} is missing",
                path=snap)
        # Every file the snapshot holds is checked (a loader may open any of them), not only the lock's.
        verify_folder(snap, entry.files, full=request.verify == "full", model=record.repo_id,
                      root=self.volume_dir)
        return Resolved(repo_id=record.repo_id, source=self.name, path=snap, commit=entry.commit,
                        revision=request.revision, labels=entry.labels, dimension=entry.dimension,
                        files=dict(entry.files), verified=Verified(request.verify))

    def _pick(self, record: manifest_mod.ModelRecord, request: Request) -> manifest_mod.ModelEntry:
        held = ", ".join(f"{c[:12]} (provisioned {e.provisioned_at or 'at an unknown time'})"
                         for c, e in sorted(record.commits.items()))
        want = request.want_commit
        if want:
            entry = record.get(want)
            if entry is None:
                by = "models.lock" if request.pinned is not None else "the requested revision"
                raise Unavailable(f"the volume has {record.repo_id} at {held}, not {want[:12]} that {by} pins",
                                  hint="the provisioning Job for this lock may still be running: wait for it "
                                       "(`smm validate --wait --lock LOCK`), or run `smm pull --target DIR`")
            return entry
        if len(record.commits) == 1:
            return next(iter(record.commits.values()))
        raise ConfigurationError(
            f"{record.repo_id} has {len(record.commits)} commits on the volume {self.volume_dir}: {held}; "
            "production loads exactly the commit a lock pins: set SMM_LOCK to this deployment's models.lock, "
            "or pass revision='<40-hex commit>', or remove the unused commits with `smm prune --keep-locks N`")

    def _check_pins(self, entry: manifest_mod.ModelEntry, pins: dict[str, FileEntry]) -> None:
        """The lock's files must be among the recorded ones, with the same size and digest."""
        for rel, want in sorted(pins.items()):
            have = entry.files.get(rel)
            if have is None:
                raise Unavailable(f"{entry.repo_id}@{entry.commit[:12]}: {rel} is pinned by models.lock but was "
                                  f"never provisioned onto {self.volume_dir}",
                                  hint="provision this lock with `smm pull --target DIR` (the Job of this lock)")
            if have != want:
                raise IntegrityError(f"{entry.repo_id}@{entry.commit[:12]}: {rel} is recorded on the volume as "
                                     f"{have.size} bytes {have.sha256}, but models.lock pins {want.size} bytes "
                                     f"{want.sha256}", path=self.manifest_path, expected=want.sha256,
                                     actual=have.sha256)
