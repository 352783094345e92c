"""The persistent-volume source: a read-only, pre-provisioned HF-cache folder plus model-metadata.yaml.

Reads only. No lock files, refs or ``.no_exist`` markers are written, so a volume mounted read-only
just works (huggingface_hub #3394, #2797 are what happens otherwise).
"""

from __future__ import annotations

from pathlib import Path

from .. import manifest as manifest_mod, store
from ..errors import IntegrityError
from .base import Request, Resolved, Unavailable, Verified
from .verify import verify_folder


class VolumeSource:
    name = "volume"

    def __init__(self, volume_dir: Path):
        self.volume_dir = Path(volume_dir)
        self._manifest: manifest_mod.Manifest | None = None

    @property
    def manifest_path(self) -> Path:
        return self.volume_dir / manifest_mod.MANIFEST_NAME

    def manifest(self) -> manifest_mod.Manifest:
        if self._manifest is None:
            if not self.manifest_path.is_file():
                raise Unavailable(f"no volume manifest at {self.manifest_path}",
                                  hint="provision the volume with `smm pull --target DIR` or set SMM_VOLUME_DIR")
            self._manifest = manifest_mod.load(self.manifest_path)  # malformed -> ManifestError (fatal)
        return self._manifest

    def resolve(self, request: Request) -> Resolved:
        man = self.manifest()
        entry = man.find(request.repo_id) or man.find(request.name)
        if entry is None:
            listed = ", ".join(sorted(man.models)) or "nothing"
            raise Unavailable(f"{request.repo_id} is not on the volume {self.volume_dir} (its manifest lists: {listed})",
                              hint="add it to models.lock and re-provision with `smm pull --target`")
        want = request.want_commit or (request.revision if request.revision and len(request.revision) == 40 else None)
        if want and want != entry.commit:
            raise Unavailable(f"the volume has {entry.repo_id}@{entry.commit[:12]}, not the requested {want[:12]}")
        snap = store.repo_dir(self.volume_dir, entry.repo_id) / "snapshots" / entry.commit
        if not snap.is_dir():
            raise IntegrityError(
                f"{entry.repo_id}: the manifest {self.manifest_path} lists commit {entry.commit} but {snap} is missing",
                path=snap)
        verify_folder(snap, entry.files, full=request.verify == "full", model=entry.repo_id)
        return Resolved(repo_id=entry.repo_id, source=self.name, path=snap, commit=entry.commit,
                        revision=request.revision, labels=entry.labels, dimension=entry.dimension,
                        files=dict(entry.files), verified=Verified(request.verify))
