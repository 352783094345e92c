"""Reading ``model-metadata.yaml``: every field of formats 1 and 2 checked, each failure naming file, line and
field (``file:line: field: what was expected``). The types it builds, the writer and the format's other
rules are in :mod:`.manifest`; the per-file record (``parse_files``) is shared with models.lock."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from .._layout import REPO_ID_EXPECTED, is_commit, is_repo_id
from ..store.hashing import is_sha256
from . import _fields, _yaml
from .manifest import FORMAT, FileEntry, LockRecord, Manifest, ModelEntry, ModelRecord

READ_FORMATS = (1, 2)
_COMMIT_KEYS = {"model_type", "files", "labels", "dimension", "extra", "provisioned_at", "lock_digest"}


def parse_files(doc: _yaml.Doc, kp: tuple[Any, ...], raw: Any) -> dict[str, FileEntry]:
    if not isinstance(raw, dict) or not raw:
        doc.fail(kp, "expected a non-empty mapping of file path -> {size, sha256}")
    files: dict[str, FileEntry] = {}
    for rel, spec in raw.items():
        fkp = kp + (rel,)
        parts = rel.split("/")
        if rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts) or _fields.has_control(rel):
            doc.fail(fkp, "file paths must be relative POSIX paths without '.', '..', empty parts or controls")
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


def _digest(doc: _yaml.Doc, kp: tuple[Any, ...], value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("sha256:") or not is_sha256(value):
        doc.fail(kp, f"expected 'sha256:' followed by 64 lowercase hex digits, got {value!r}")
    return value


def _commit_id(doc: _yaml.Doc, kp: tuple[Any, ...], value: Any) -> str:
    if not is_commit(value):
        doc.fail(kp, f"expected a 40-hex commit id, got {value!r}")
    return value


def _parse_commit(doc: _yaml.Doc, kp: tuple[Any, ...], rid: str, commit: str, raw: Any,
                  allowed: set[str]) -> ModelEntry:
    """The per-commit fields (shared by format 1's model entry and format 2's commit entry)."""
    if not isinstance(raw, dict):
        doc.fail(kp, "expected a mapping with model_type and files")
    for key in ("model_type", "files"):
        if key not in raw:
            doc.fail(kp, f"missing required key '{key}'")
    mtype = _fields.model_type(doc, kp + ("model_type",), raw["model_type"])
    labels = _fields.labels(doc, kp + ("labels",), raw.get("labels", []))
    dim = raw.get("dimension")
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
        doc.fail(kp + ("dimension",), f"expected a positive integer, got {dim!r}")
    extra = _fields.extra(doc, kp + ("extra",), raw.get("extra", {}))
    at = _fields.text(doc, kp + ("provisioned_at",), raw.get("provisioned_at", ""), "an ISO 8601 time in quotes")
    digest = raw.get("lock_digest")
    if digest is not None:
        _digest(doc, kp + ("lock_digest",), digest)
    unknown = set(raw) - allowed
    if unknown:
        doc.fail(kp + (sorted(unknown)[0],), "unknown key")
    return ModelEntry(repo_id=rid, commit=commit, model_type=mtype, files=parse_files(doc, kp + ("files",),
                      raw["files"]), labels=labels, dimension=dim, extra=extra, provisioned_at=at,
                      lock_digest=digest)


def _parse_v1(doc: _yaml.Doc, data: dict[str, Any]) -> tuple[dict[str, ModelRecord], tuple[LockRecord, ...]]:
    """Format 1: one commit per model, one lock digest for the whole volume."""
    top_digest = data.get("lock_digest")
    if top_digest is not None:
        _digest(doc, ("lock_digest",), top_digest)
    at = str(data.get("verified_at", ""))
    models: dict[str, ModelRecord] = {}
    for rid, raw in data["models"].items():
        kp: tuple[Any, ...] = ("models", rid)
        if not isinstance(raw, dict):
            doc.fail(kp, "expected a mapping with commit, model_type and files")
        if "commit" not in raw:
            doc.fail(kp, "missing required key 'commit'")
        commit = _commit_id(doc, kp + ("commit",), raw["commit"])
        body = {k: v for k, v in raw.items() if k not in ("commit", "aliases")}
        entry = _parse_commit(doc, kp, rid, commit, body, _COMMIT_KEYS - {"provisioned_at", "lock_digest"})
        aliases = _fields.aliases(doc, kp + ("aliases",), raw.get("aliases", []))
        models[rid] = ModelRecord(rid, {commit: replace(entry, provisioned_at=at, lock_digest=top_digest)}, aliases)
    locks = (LockRecord(top_digest, at, {rid: next(iter(r.commits)) for rid, r in models.items()}),) \
        if top_digest else ()
    return models, locks


def _parse_v2(doc: _yaml.Doc, data: dict[str, Any]) -> tuple[dict[str, ModelRecord], tuple[LockRecord, ...]]:
    models: dict[str, ModelRecord] = {}
    for rid, raw in data["models"].items():
        kp: tuple[Any, ...] = ("models", rid)
        if not isinstance(raw, dict) or not isinstance(raw.get("commits"), dict) or not raw["commits"]:
            doc.fail(kp, "expected a mapping with 'commits' (commit -> {model_type, files, ...}) and optional "
                     "'aliases'")
        unknown = set(raw) - {"commits", "aliases"}
        if unknown:
            doc.fail(kp + (sorted(unknown)[0],), "unknown key")
        commits = {_commit_id(doc, kp + ("commits", c), c): _parse_commit(doc, kp + ("commits", c), rid, c, body,
                                                                          _COMMIT_KEYS)
                   for c, body in raw["commits"].items()}
        models[rid] = ModelRecord(rid, commits, _fields.aliases(doc, kp + ("aliases",), raw.get("aliases", [])))
    raw_locks = data.get("locks", [])
    if not isinstance(raw_locks, list):
        doc.fail(("locks",), "expected a list of {digest, provisioned_at, models}")
    locks = []
    for i, raw in enumerate(raw_locks):
        kp = ("locks", i)
        if not isinstance(raw, dict) or set(raw) != {"digest", "provisioned_at", "models"}:
            doc.fail(kp, "expected exactly the keys digest, provisioned_at, models")
        pins = raw["models"]
        if not isinstance(pins, dict) or not pins:
            doc.fail(kp + ("models",), "expected a mapping of repo id -> commit")
        for rid, commit in pins.items():
            _commit_id(doc, kp + ("models", rid), commit)
            rec = models.get(rid)
            if rec is None or commit not in rec.commits:
                doc.fail(kp + ("models", rid), f"{rid}@{commit[:12]} is not recorded under 'models'")
        locks.append(LockRecord(_digest(doc, kp + ("digest",), raw["digest"]), str(raw["provisioned_at"]),
                                dict(pins)))
    return models, tuple(locks)


def read(doc: _yaml.Doc, path: str | Path) -> Manifest:
    """The manifest in ``doc`` (format 1 or 2), every field checked; a malformed one fails naming file and line."""
    data = doc.data
    if not isinstance(data, dict):
        doc.fail((), "expected a mapping with 'format' and 'models'")
    fmt = data.get("format")
    if type(fmt) is not int or fmt not in READ_FORMATS:  # `true` and `1.0` are not format 1
        doc.fail(("format",), f"expected format: {FORMAT} (or {READ_FORMATS[0]}, still read), got {fmt!r}; a "
                 "newer smart-model-manager wrote it? upgrade this one")
    if not isinstance(data.get("models"), dict):
        doc.fail(("models",), "expected a mapping of repo id -> model entry")
    allowed = {"format", "generated_by", "verified_at", "models"} | ({"lock_digest"} if fmt == 1 else {"locks"})
    unknown = set(data) - allowed
    if unknown:
        doc.fail((sorted(unknown)[0],), "unknown key")
    for rid in data["models"]:
        if not is_repo_id(rid):
            doc.fail(("models", rid), f"expected {REPO_ID_EXPECTED}")
    models, locks = _parse_v1(doc, data) if fmt == 1 else _parse_v2(doc, data)
    seen: dict[str, str] = {}
    for rid, m in models.items():
        for a in m.aliases:
            if a in seen and seen[a] != rid:
                doc.fail(("models", rid, "aliases"), f"alias {a!r} is also used by {seen[a]}")
            seen[a] = rid
    by = _fields.text(doc, ("generated_by",), data.get("generated_by", ""))
    at = _fields.text(doc, ("verified_at",), data.get("verified_at", ""), "an ISO 8601 time")
    return Manifest(models=models, locks=locks, generated_by=by, verified_at=at, path=str(path), format=fmt)
