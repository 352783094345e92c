"""The local cache source: a Hugging Face hub cache (anything huggingface_hub fetched is found)."""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingFileError
from ..store import cache as store
from .base import Request, Resolved, Unavailable, Verified, read_schema
from .verify import verify_folder


class CacheSource:
    name = "cache"

    def __init__(self, cache_dir: Path):
        self.cache_dir = Path(cache_dir)

    def resolve(self, request: Request) -> Resolved:
        commit = request.want_commit
        revision = commit or request.revision or "main"
        snap = store.find_snapshot(self.cache_dir, request.repo_id, revision)
        if snap is None:
            raise Unavailable(f"{request.repo_id}@{revision} is not in the local cache {self.cache_dir}")
        if not (snap / "config.json").is_file():
            raise Unavailable(f"{snap} has no config.json (an incomplete snapshot)")
        pinned = request.pinned
        files = dict(pinned.files) if pinned is not None else {}
        verified = Verified.NONE
        if files and pinned is not None and pinned.commit == snap.name:
            # Pinned by the lock: check every file. A *missing* file means a partial snapshot (huggingface_hub
            # fills snapshots file by file): let the download source complete it. A size or sha256
            # mismatch is fatal: it never falls through (huggingface_hub #2364).
            try:
                verify_folder(snap, files, full=request.verify == "full", model=request.repo_id,
                              root=self.cache_dir)
            except MissingFileError as err:
                raise Unavailable(f"the cached snapshot {snap.name[:12]} is incomplete: {err}",
                                  hint="complete it with `smm pull`") from err
            verified = Verified(request.verify)
        else:  # nothing pinned to check bytes against; still, nothing may come from outside the cache
            store.check_inside(self.cache_dir, snap, f"{request.repo_id}: snapshot {snap.name}")
            for rel, p in store.snapshot_files(snap).items():
                store.check_inside(self.cache_dir, p, f"{request.repo_id}: {rel}")
        labels, dim = read_schema(snap)
        return Resolved(repo_id=request.repo_id, source=self.name, path=snap, commit=snap.name,
                        revision=request.revision, labels=labels, dimension=dim, files=files, verified=verified)
