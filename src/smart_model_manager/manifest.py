"""The volume manifest ``model-metadata.yaml`` (format 1; see docs/volume-manifest.md).

It lists every model on a provisioned volume: repo id, commit, model type, labels, dimension and every
file with its size and sha256. It is written last by the provisioner, so its presence means "complete".
Parsing is strict and reports ``file:line: field: what was expected``.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _yaml
from ._layout import MANIFEST_NAME as MANIFEST_NAME, REPO_ID_EXPECTED, is_commit, is_repo_id  # re-exported
from .errors import ManifestError
from .hashing import is_sha256, with_prefix

FORMAT = 1


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str  # "sha256:<hex>"

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": with_prefix(self.sha256)}


@dataclass(frozen=True)
class ModelEntry:
    repo_id: str
    commit: str
    model_type: str
    files: dict[str, FileEntry]
    labels: tuple[str, ...] = ()
    dimension: int | None = None
    aliases: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "commit": self.commit,
            "model_type": self.model_type,
            "files": {p: f.as_dict() for p, f in sorted(self.files.items())},
        }
        if self.labels:
            d["labels"] = list(self.labels)
        if self.dimension is not None:
            d["dimension"] = self.dimension
        if self.aliases:
            d["aliases"] = sorted(self.aliases)
        if self.extra:
            d["extra"] = self.extra
        return d


@dataclass(frozen=True)
class Manifest:
    models: dict[str, ModelEntry]
    generated_by: str = ""
    verified_at: str = ""
    lock_digest: str | None = None
    path: str | None = None

    def find(self, name: str) -> ModelEntry | None:
        """By repo id (case-insensitive, like the Hub) or by alias."""
        if name in self.models:
            return self.models[name]
        low = name.lower()
        for rid, entry in self.models.items():
            if rid.lower() == low or name in entry.aliases:
                return entry
        return None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": FORMAT,
            "generated_by": self.generated_by,
            "verified_at": self.verified_at,
            "models": {rid: m.as_dict() for rid, m in sorted(self.models.items())},
        }
        if self.lock_digest:
            d["lock_digest"] = self.lock_digest
        return d

    def dumps(self) -> str:
        return "# Written by smart-model-manager last, after every file was verified. Do not edit.\n" + _yaml.dump(
            self.as_dict())


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_files(doc: _yaml.Doc, kp: tuple[Any, ...], raw: Any) -> dict[str, FileEntry]:
    if not isinstance(raw, dict) or not raw:
        doc.fail(kp, "expected a non-empty mapping of file path -> {size, sha256}")
    files: dict[str, FileEntry] = {}
    for rel, spec in raw.items():
        fkp = kp + (rel,)
        if rel.startswith("/") or "\\" in rel or any(part in ("", ".", "..") for part in rel.split("/")):
            doc.fail(fkp, "file paths must be relative POSIX paths without '.', '..' or empty parts")
        if not isinstance(spec, dict):
            doc.fail(fkp, "expected a mapping with 'size' and 'sha256'")
        size = spec.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            doc.fail(fkp + ("size",), f"expected a non-negative integer, got {size!r}")
        digest = spec.get("sha256")
        if not isinstance(digest, str) or not digest.startswith("sha256:") or not is_sha256(digest):
            doc.fail(fkp + ("sha256",), f"expected 'sha256:' followed by 64 lowercase hex digits, got {digest!r}")
        unknown = set(spec) - {"size", "sha256"}
        if unknown:
            doc.fail(fkp + (sorted(unknown)[0],), "unknown key; expected only size and sha256")
        files[rel] = FileEntry(size=size, sha256=digest)
    return files


def _parse_model(doc: _yaml.Doc, rid: str, raw: Any) -> ModelEntry:
    kp: tuple[Any, ...] = ("models", rid)
    if not is_repo_id(rid):
        doc.fail(kp, f"expected {REPO_ID_EXPECTED}")
    if not isinstance(raw, dict):
        doc.fail(kp, "expected a mapping with commit, model_type and files")
    for key in ("commit", "model_type", "files"):
        if key not in raw:
            doc.fail(kp, f"missing required key '{key}'")
    commit = raw["commit"]
    if not is_commit(commit):
        doc.fail(kp + ("commit",), f"expected a 40-hex commit id, got {commit!r}")
    mtype = raw["model_type"]
    if not isinstance(mtype, str) or not mtype:
        doc.fail(kp + ("model_type",), "expected a model type such as 'sentiment' or 'embeddings'")
    labels = raw.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        doc.fail(kp + ("labels",), "expected a list of label names in id order")
    dim = raw.get("dimension")
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
        doc.fail(kp + ("dimension",), f"expected a positive integer, got {dim!r}")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(x, str) and x for x in aliases):
        doc.fail(kp + ("aliases",), "expected a list of alias names")
    extra = raw.get("extra", {})
    if not isinstance(extra, dict):
        doc.fail(kp + ("extra",), "expected a mapping")
    unknown = set(raw) - {"commit", "model_type", "files", "labels", "dimension", "aliases", "extra"}
    if unknown:
        doc.fail(kp + (sorted(unknown)[0],), "unknown key")
    return ModelEntry(repo_id=rid, commit=commit, model_type=mtype, files=parse_files(doc, kp + ("files",),
                      raw["files"]), labels=tuple(labels), dimension=dim, aliases=tuple(aliases), extra=extra)


def loads(text: str, path: str | Path = "<string>") -> Manifest:
    doc = _yaml.load(text, path, ManifestError)
    data = doc.data
    if not isinstance(data, dict):
        doc.fail((), "expected a mapping with 'format' and 'models'")
    if data.get("format") != FORMAT:
        doc.fail(("format",), f"expected format: {FORMAT}, got {data.get('format')!r}")
    models_raw = data.get("models")
    if not isinstance(models_raw, dict):
        doc.fail(("models",), "expected a mapping of repo id -> model entry")
    unknown = set(data) - {"format", "generated_by", "verified_at", "lock_digest", "models"}
    if unknown:
        doc.fail((sorted(unknown)[0],), "unknown key")
    models = {rid: _parse_model(doc, rid, raw) for rid, raw in models_raw.items()}
    seen: dict[str, str] = {}
    for rid, m in models.items():
        for a in m.aliases:
            if a in seen and seen[a] != rid:
                doc.fail(("models", rid, "aliases"), f"alias {a!r} is also used by {seen[a]}")
            seen[a] = rid
    return Manifest(models=models, generated_by=str(data.get("generated_by", "")),
                    verified_at=str(data.get("verified_at", "")), lock_digest=data.get("lock_digest"),
                    path=str(path))


def load(path: str | os.PathLike[str]) -> Manifest:
    p = Path(path)
    return loads(_yaml.read(p, ManifestError), p)
