"""``smm lock``: resolve ``models.yaml`` against an endpoint into ``models.lock``.

For each model: one metadata request gives the commit the revision points to and every file with its
size (``HubClient.revision``). sha256 digests come from LFS metadata when the endpoint lists it; small
files stored in git are DOWNLOADED and hashed, because their Hub etag is a git sha1, not a sha256
(pixeloven/ComfyUI-Docker#92 is what trusting it looks like). Labels come from the pinned commit's
``config.json`` (``id2label`` in id order); ``dimension`` from ``hidden_size`` for label-less types.

Relocking is cheap and stable: when an alias already in the old lock resolves to the same repo, commit
and file set, its digests, labels and dimension are reused (a commit's bytes never change), so an
unchanged upstream costs one request per model and rewrites no bytes.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import FormatError, IntegrityError, LockfileError, ModelNotFoundError, Unavailable
from ..formats.labels import hidden_size, parse_id2label
from ..formats.lockfile import Lock, LockEntry
from ..formats.manifest import FileEntry
from ..formats.spec import Spec, SpecEntry, select_files
from ..registry import config_mismatch, get_model_type, infer_model_type
from ..remote.hub import HubClient, RemoteRevision
from ..store.hashing import with_prefix

log = logging.getLogger(__name__)
AUTO = "auto"  # SpecEntry.model_type for one-step pulls: decided from the pinned config.json


def resolve_lock(spec: Spec, endpoint: str, token: str | None = None, *, timeout: float = 30.0,
                 retries: int = 3, previous: Lock | None = None, client: HubClient | None = None) -> Lock:
    """Pin every model of ``spec`` to a commit and every selected file to a sha256."""
    client = client or HubClient(endpoint, token, timeout=timeout, retries=retries)
    models = {}
    for alias, entry in sorted(spec.models.items()):
        old = previous.models.get(alias) if previous is not None else None
        models[alias] = _lock_one(client, entry, old, spec.path)
    return Lock(models=models)


def _lock_one(client: HubClient, entry: SpecEntry, old: LockEntry | None, spec_path: str | None) -> LockEntry:
    where = f"{spec_path}:{entry.line}: " if spec_path and entry.line else ""
    try:
        remote = client.revision(entry.repo_id, entry.revision)
    except Unavailable as why:
        raise ModelNotFoundError(f"{where}models.{entry.alias}: {entry.repo_id}@{entry.revision} cannot be "
                                 f"locked: {why.reason}", attempts=[("hub", why.reason)]) from None
    paths = select_files(remote.files, entry.include, entry.exclude)
    if not paths:
        raise LockfileError(f"models.{entry.alias}: no file of {entry.repo_id}@{remote.commit[:12]} matches "
                            f"include={list(entry.include)} exclude={list(entry.exclude)}; "
                            f"the repo has: {', '.join(sorted(remote.files)[:20])}",
                            path=spec_path, line=entry.line)
    if entry.model_type == AUTO and old is not None and old.repo_id == entry.repo_id:
        entry = replace(entry, model_type=old.model_type)
    if old is not None and old.repo_id == entry.repo_id and old.commit == remote.commit \
            and sorted(old.files) == paths and old.model_type == entry.model_type:
        log.info("lock: %s unchanged at %s", entry.alias, remote.commit[:12])
        return LockEntry(alias=entry.alias, repo_id=entry.repo_id, revision=entry.revision, commit=remote.commit,
                         model_type=entry.model_type, files=dict(old.files), labels=old.labels,
                         dimension=old.dimension, extra=dict(old.extra),
                         polarity=_polarity(entry, old.labels, spec_path))
    files, config = _digests(client, remote, paths)
    if entry.model_type == AUTO:  # `smm pull ORG/NAME` without --model-type: the config decides
        inferred = infer_model_type(config)
        if inferred is None:
            raise LockfileError(f"{entry.repo_id}@{remote.commit[:12]}: cannot tell the model type from "
                                f"config.json architectures {config.get('architectures')}; pass --model-type")
        entry = replace(entry, model_type=inferred)
    labels, dimension = _schema(config, entry, remote, spec_path)
    log.info("lock: %s -> %s@%s (%d files)", entry.alias, entry.repo_id, remote.commit[:12], len(files))
    return LockEntry(alias=entry.alias, repo_id=entry.repo_id, revision=entry.revision, commit=remote.commit,
                     model_type=entry.model_type, files=files, labels=labels, dimension=dimension,
                     polarity=_polarity(entry, labels, spec_path))


def _polarity(entry: SpecEntry, labels: tuple[str, ...], spec_path: str | None) -> dict[str, str]:
    """The declared label -> polarity map, checked against the labels just pinned: a map that misses a
    label (or names one the model does not have) stops the lock, with the models.yaml line."""
    declared = dict(entry.polarity)
    if not declared:
        return {}
    missing = [lab for lab in labels if lab not in declared]
    unknown = [lab for lab in declared if lab not in labels]
    if missing or unknown:
        raise LockfileError(f"models.{entry.alias}.polarity: must map exactly the labels {list(labels)} of "
                            f"{entry.repo_id}" + (f"; missing {missing}" if missing else "")
                            + (f"; not labels of this model {unknown}" if unknown else ""),
                            path=spec_path, line=entry.line)
    return {lab: declared[lab] for lab in labels}


def lock_entry(client: HubClient, entry: SpecEntry, old: LockEntry | None = None,
               spec_path: str | None = None) -> LockEntry:
    """Pin one models.yaml entry (``model_type="auto"``: decided from its config.json); ``old`` is its
    previous lock entry, reused when nothing changed upstream."""
    return _lock_one(client, entry, old, spec_path)


def _digests(client: HubClient, remote: RemoteRevision,
             paths: list[str]) -> tuple[dict[str, FileEntry], dict[str, Any]]:
    """sha256 of every selected file, and the pinned config.json (always fetched: labels, dimension)."""
    files: dict[str, FileEntry] = {}
    config: Any = None
    need_config = "config.json" in remote.files
    with tempfile.TemporaryDirectory(prefix="smm-lock-") as tmp:
        for rel in paths + (["config.json"] if need_config and "config.json" not in paths else []):
            rf = remote.files[rel]
            if rf.sha256 and rf.size is not None and rel != "config.json":
                if rel in paths:
                    files[rel] = FileEntry(size=rf.size, sha256=with_prefix(rf.sha256))
                continue
            dest = Path(tmp) / "file"
            size, sha = client.download(remote.repo_id, remote.commit, rel, dest, size=rf.size)
            if rf.sha256 and sha != rf.sha256:
                raise IntegrityError(f"{remote.repo_id}@{remote.commit[:12]}: {rel}: the endpoint lists sha256:"
                                     f"{rf.sha256} but served bytes with sha256:{sha}",
                                     path=rel, expected="sha256:" + rf.sha256, actual="sha256:" + sha)
            if rel == "config.json":
                try:
                    config = json.loads(dest.read_text(encoding="utf-8"))
                except (UnicodeDecodeError, ValueError) as err:
                    raise FormatError(f"{remote.repo_id}@{remote.commit[:12]}: config.json is not JSON: {err}",
                                      path="config.json") from err
            if rel in paths:
                files[rel] = FileEntry(size=size, sha256=with_prefix(sha))  # hashed while streaming
            dest.unlink()
    return files, config if isinstance(config, dict) else {}


def _schema(cfg: dict[str, Any], entry: SpecEntry, remote: RemoteRevision,
            spec_path: str | None = None) -> tuple[tuple[str, ...], int | None]:
    mt = get_model_type(entry.model_type)
    why = config_mismatch(entry.model_type, cfg)
    if why:  # refuse before a wrong type is pinned and every consumer loads it wrong
        raise LockfileError(f"models.{entry.alias}: {entry.repo_id}@{remote.commit[:12]} cannot be locked "
                            f"as model_type {entry.model_type!r}: {why} (fix model_type in models.yaml)",
                            path=spec_path, line=entry.line)
    if mt.has_labels:
        if not isinstance(cfg.get("id2label"), dict) or not cfg["id2label"]:
            raise LockfileError(f"models.{entry.alias}: {entry.repo_id}@{remote.commit[:12]} has no id2label in "
                                f"config.json, so a {entry.model_type} model's labels are unknown")
        try:
            return parse_id2label(cfg, strict=True), None
        except FormatError as err:
            raise LockfileError(f"models.{entry.alias}: {entry.repo_id}@{remote.commit[:12]}: config.json: "
                                f"{err.reason}") from err
    return (), hidden_size(cfg)


def diff(old: Lock | None, new: Lock) -> list[str]:
    """Human lines saying what changed between two locks (for ``smm lock --check``)."""
    if old is None:
        return ["no lock file yet"]
    lines = []
    for alias in sorted(set(old.models) | set(new.models)):
        a, b = old.models.get(alias), new.models.get(alias)
        if a is None:
            lines.append(f"{alias}: not locked yet")
        elif b is None:
            lines.append(f"{alias}: locked but no longer in models.yaml")
        elif a.commit != b.commit:
            lines.append(f"{alias}: {a.repo_id} moved {a.commit[:12]} -> {b.commit[:12]}")
        elif a.as_dict() != b.as_dict():
            lines.append(f"{alias}: entry differs (files, labels, revision or type)")
    return lines or ["formatting differs (rewrite with `smm lock`)"]
