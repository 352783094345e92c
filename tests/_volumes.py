"""Build real volumes and caches for tests: HF-cache layout via ``store.import_folder`` + a manifest.

Shared test helper (others may import it): ``make_volume(root, {repo_id: folder}, model_type=...)``.
Nothing here fakes the layout: volumes are built by the same code the provisioner uses.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

from smart_model_manager.formats import lockfile, manifest
from smart_model_manager.formats.manifest import FileEntry, Manifest, ModelEntry
from smart_model_manager.sources.base import read_schema
from smart_model_manager.store import cache as store


def make_model_folder(folder: Path, files: Mapping[str, bytes] | None = None, *,
                      labels: tuple[str, ...] = ("negative", "neutral", "positive")) -> Path:
    """A small model folder: config.json with id2label plus the given files (bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"model_type": "bert", "hidden_size": 32,
           "id2label": {str(i): name for i, name in enumerate(labels)}}
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    for rel, data in (files or {"model.safetensors": b"\0" * 1024, "vocab.txt": b"[PAD]\n[UNK]\n"}).items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return folder


def make_volume(root: Path, models: Mapping[str, Path], model_type: str | Mapping[str, str] = "sentiment", *,
                lock_digest: str | None = None, write_manifest: bool = True) -> Manifest:
    """Import each folder into ``root`` (HF-cache layout) and write ``model-metadata.yaml`` last.

    ``model_type`` is one type for all models or a mapping repo_id -> type. Returns the manifest
    (``manifest.path`` is where it was written, or None with ``write_manifest=False``).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    entries: dict[str, ModelEntry] = {}
    for repo_id, folder in models.items():
        res = store.import_folder(Path(folder), root, repo_id)
        labels, dim = read_schema(res.snapshot)
        mtype = model_type if isinstance(model_type, str) else model_type[repo_id]
        entries[repo_id] = ModelEntry(
            repo_id=repo_id, commit=res.commit, model_type=mtype,
            files={rel: FileEntry(size=size, sha256="sha256:" + sha) for rel, (size, sha) in res.files.items()},
            labels=labels if mtype == "sentiment" else (), dimension=dim if mtype == "embeddings" else None)
    at = manifest.now_iso()
    stamped = [dataclasses.replace(e, provisioned_at=at, lock_digest=lock_digest) for e in entries.values()]
    locks = [manifest.LockRecord(lock_digest, at, {e.repo_id: e.commit for e in stamped})] if lock_digest else []
    man = Manifest.of(stamped, locks=locks, generated_by="tests/_volumes.py", verified_at=at)
    if not write_manifest:
        return man
    path = root / manifest.MANIFEST_NAME
    store.atomic_write_text(path, man.dumps())
    return manifest.load(path)


def lock_for(man: Manifest, path: Path | None = None) -> lockfile.Lock:
    """A models.lock pinning what ``man`` lists (alias = repo name; the most recently provisioned commit of
    each model); written to ``path`` if given."""
    models = {
        rid.split("/")[-1]: lockfile.LockEntry(alias=rid.split("/")[-1], repo_id=rid, revision="main",
                                               commit=m.commit, model_type=m.model_type, files=dict(m.files),
                                               labels=m.labels, dimension=m.dimension)
        for rid, m in ((rid, rec.latest()) for rid, rec in man.models.items())}
    text = lockfile.Lock(models=models).dumps()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
        return lockfile.load(path)
    return lockfile.loads(text)
