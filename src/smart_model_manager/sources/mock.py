"""The mock source: a model schema without any weights (test environment only)."""

from __future__ import annotations

from pathlib import Path

from .._layout import MANIFEST_NAME
from ..errors import FormatError
from ..registry import get_model_type
from ..store import cache as store
from . import known_models
from .base import Request, Resolved, Verified, read_schema


class MockSource:
    """Labels/dimension come from, in order: the lock, a local config.json (cache, then volume),
    the built-in table of well-known models, then the model type's documented default."""

    name = "mock"

    def __init__(self, cache_dir: Path | None = None, volume_dir: Path | None = None):
        self.cache_dir = cache_dir
        self.volume_dir = volume_dir

    def _local_schema(self, repo_id: str) -> tuple[tuple[str, ...], int | None, str] | None:
        for root, where in ((self.cache_dir, "cache"), (self.volume_dir, "volume")):
            if root is None:
                continue
            snap = store.find_snapshot(root, repo_id)
            if snap is not None:
                labels, dim = read_schema(snap)
                if labels or dim:
                    return labels, dim, f"{where} config.json"
        if self.volume_dir is not None and (self.volume_dir / MANIFEST_NAME).is_file():
            from ..formats import manifest as manifest_mod  # PyYAML only when there is a manifest to read

            try:
                record = manifest_mod.load(self.volume_dir / MANIFEST_NAME).find(repo_id)
            except FormatError:
                record = None
            entry = record.latest() if record is not None else None  # a schema for mocks, not a commit to load
            if entry is not None and (entry.labels or entry.dimension):
                return entry.labels, entry.dimension, "volume manifest"
        return None

    def resolve(self, request: Request) -> Resolved:
        mt = get_model_type(request.model_type)
        labels: tuple[str, ...] = ()
        dim: int | None = None
        origin = "default"
        pinned = request.pinned
        if pinned is not None and (pinned.labels or pinned.dimension):
            labels, dim, origin = tuple(pinned.labels or ()), pinned.dimension, "lock"
        else:
            local = self._local_schema(request.repo_id)
            if local is not None:
                labels, dim, origin = local
            else:
                kl, kd = known_models.known_labels(request.repo_id), known_models.known_dimension(request.repo_id)
                if kl or kd:
                    labels, dim, origin = kl or (), kd, "built-in table"
        if mt.has_labels and not labels:
            labels, origin = mt.default_labels, "default" if origin == "default" else origin
        if not mt.has_labels and dim is None:
            dim = mt.default_dimension
        commit = pinned.commit if pinned is not None else None
        return Resolved(repo_id=request.repo_id, source="mock", path=None, commit=commit,
                        revision=request.revision, labels=labels if mt.has_labels else (),
                        dimension=dim, verified=Verified.SCHEMA, schema_origin=origin)
