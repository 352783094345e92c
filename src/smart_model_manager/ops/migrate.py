"""``smm migrate``: an original-design volume (one folder per model) -> a verified volume of this package.

The original layout is ``/app/models/<name>/`` with a model saved by ``save_pretrained`` (weights as
``model.safetensors`` or ``pytorch_model.bin``), optionally a ``cache_metadata.json`` naming the model,
plus at the root a ``manifest.json`` or an old-format ``model-metadata.yaml`` (no ``format:`` key).

The plan is made first and is complete before anything is written: every folder gets its repo id
(``--map`` first, then the old manifests), its model type and what happens to its weights. A plan with
a problem writes nothing. Pickle weights (``*.bin``) are only touched with ``allow_pickle``: they are then
converted to ``model.safetensors`` (``torch.load(weights_only=True)``), so the new volume holds no pickle.
Each model is imported by the same code as ``smm import`` (content-addressed, verified), the new
``model-metadata.yaml`` is written last, and the result is re-validated in full. The source is only read.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _layout
from ..errors import ConfigurationError, FormatError, IntegrityError, ManifestError

log = logging.getLogger(__name__)

OLD_MANIFESTS = ("manifest.json", "model-metadata.yaml", "model-metadata.yml")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
SKIPPED_FILES = ("cache_metadata.json",)   # the original's bookkeeping, not part of the model
_REPO_KEYS = ("repo_id", "model_name", "model_id", "hf_name", "huggingface_name", "hub_id", "name", "model")
_DIR_KEYS = ("path", "local_path", "local_name", "dir", "directory", "folder")
_TYPE_KEYS = ("model_type", "type", "task")
TYPE_NAMES = {"sentiment": "sentiment", "sentiment-analysis": "sentiment", "text-classification": "sentiment",
              "classification": "sentiment", "embeddings": "embeddings", "embedding": "embeddings",
              "feature-extraction": "embeddings", "sentence-similarity": "embeddings"}


@dataclass
class PlanItem:
    name: str                    # the folder name (kept as an alias in the new manifest)
    folder: Path
    repo_id: str | None = None
    repo_from: str = ""          # where the repo id came from
    model_type: str | None = None
    weights: str = "none"        # safetensors | pickle | none
    files: list[str] = field(default_factory=list)   # what will be imported (relative paths)
    left: list[str] = field(default_factory=list)    # what stays behind, and why
    convert: str | None = None   # the pickle file converted to model.safetensors
    problems: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum((self.folder / f).stat().st_size for f in self.files)


@dataclass
class Plan:
    source: Path
    target: Path
    manifest: str | None
    items: list[PlanItem]
    ignored: list[str]           # root entries that are not model folders

    @property
    def problems(self) -> list[str]:
        return [f"{i.name}: {p}" for i in self.items for p in i.problems]

    @property
    def ok(self) -> bool:
        return bool(self.items) and not self.problems

    def render(self) -> str:
        lines = [f"migrate {self.source} -> {self.target}"
                 + (f" (repo ids from {self.manifest})" if self.manifest else "")]
        for i in self.items:
            what = f"{i.repo_id} ({i.model_type or '?'}, from {i.repo_from})" if i.repo_id else "no repo id"
            lines.append(f"  {i.name}/ -> {what}: {len(i.files)} file(s), {i.size / 1e6:,.1f} MB, weights {i.weights}"
                         + (f"; convert {i.convert} -> model.safetensors" if i.convert else ""))
            lines += [f"      leaves {x}" for x in i.left]
            lines += [f"      PROBLEM: {p}" for p in i.problems]
        lines += [f"  ignored: {x}" for x in self.ignored]
        if not self.items:
            lines.append(f"  PROBLEM: no model folder (a subfolder with config.json) in {self.source}")
        return "\n".join(lines)


def parse_map(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["finbert=ProsusAI/finbert", ...]`` -> {folder: repo id}; bad pairs are a ConfigurationError."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, repo = pair.partition("=")
        if not sep or not name.strip() or not _layout.is_repo_id(repo.strip()):
            raise ConfigurationError(f"--map {pair!r}: expected FOLDER=org/name, e.g. finbert=ProsusAI/finbert")
        out[name.strip().strip("/")] = repo.strip()
    return out


def _entries(data: Any) -> dict[str, dict[str, Any]]:
    """Old manifests come as {models: {name: {...}}}, {models: [{...}]} or {name: {...}}: -> {folder: entry}."""
    models = data.get("models", data) if isinstance(data, dict) else data
    out: dict[str, dict[str, Any]] = {}
    items = models.items() if isinstance(models, dict) else enumerate(models if isinstance(models, list) else [])
    for key, entry in items:
        if isinstance(entry, str) and _layout.is_repo_id(entry):   # {finbert: ProsusAI/finbert}
            entry = {"repo_id": entry}
        if not isinstance(entry, dict):
            continue
        folder = next((str(entry[k]) for k in _DIR_KEYS if isinstance(entry.get(k), str)), None)
        name = Path(folder).name if folder else (key if isinstance(key, str) else None)
        if name:
            out[name] = entry
    return out


def _repo_of(entry: Mapping[str, Any]) -> str | None:
    for k in _REPO_KEYS:
        v = entry.get(k)
        if isinstance(v, str) and _layout.is_repo_id(v) and "/" in v:
            return v
    return None


def read_old_manifest(source: Path) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """(file name, {folder: entry}) from the first old manifest found; a new-format one is refused."""
    for fname in OLD_MANIFESTS:
        path = source / fname
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if fname.endswith(".json"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as err:
                raise ManifestError(f"invalid JSON: {err.msg} (column {err.colno})", path=path,
                                    line=err.lineno) from err
        else:
            from ..formats import _yaml

            data = _yaml.load(text, path, ManifestError).data
            if isinstance(data, dict) and "format" in data:
                raise ConfigurationError(f"{path} is already a format-{data['format']} manifest: {source} is a volume "
                                         f"of this package; check it with: smm validate --dir {source}")
        return fname, _entries(data)
    return None, {}


def _weights(folder: Path, files: list[str]) -> tuple[str, list[str]]:
    pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES) and "/" not in f]
    if any(f.endswith(".safetensors") for f in files):
        return "safetensors", pickles
    return ("pickle" if pickles else "none"), pickles


def _model_type(entry: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[str | None, str | None]:
    raw = next((str(entry[k]) for k in _TYPE_KEYS if isinstance(entry.get(k), str)), None)
    if raw is not None:
        mt = TYPE_NAMES.get(raw.lower())
        return (mt, None) if mt else (None, f"model type {raw!r} is not one of: {', '.join(sorted(TYPE_NAMES))}")
    archs = config.get("architectures") or []
    if any(str(a).endswith("ForSequenceClassification") for a in archs) or config.get("id2label") and len(
            config["id2label"]) > 1:
        return "sentiment", None
    return "embeddings", None


def make_plan(source: Path, target: Path, mapping: Mapping[str, str] | None = None, *,
              allow_pickle: bool = False) -> Plan:
    source, target = Path(source).expanduser(), Path(target).expanduser()
    if not source.is_dir():
        raise ConfigurationError(f"{source} is not a folder; give the original volume (e.g. /app/models)")
    src_r, tgt_r = source.resolve(), target.resolve()
    if src_r == tgt_r or tgt_r.is_relative_to(src_r) or src_r.is_relative_to(tgt_r):
        raise ConfigurationError(f"--target {target} must be outside {source} (the source is never modified)")
    manifest_name, old = read_old_manifest(source)
    mapping = dict(mapping or {})
    folders = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = sorted(set(mapping) - {p.name for p in folders})
    if unknown:
        raise ConfigurationError(f"--map names no folder of {source}: {', '.join(unknown)} "
                                 f"(folders: {', '.join(p.name for p in folders) or 'none'})")
    items: list[PlanItem] = []
    ignored = [p.name for p in sorted(source.iterdir()) if not p.is_dir() and p.name not in OLD_MANIFESTS]
    for folder in folders:
        if not (folder / _layout.CONFIG_FILE).is_file():
            ignored.append(f"{folder.name}/ (no config.json: not a model folder)")
            continue
        items.append(_plan_item(folder, mapping, old, manifest_name, allow_pickle))
    return Plan(source, target, manifest_name, items, ignored)


def _plan_item(folder: Path, mapping: Mapping[str, str], old: Mapping[str, dict[str, Any]],
               manifest_name: str | None, allow_pickle: bool) -> PlanItem:
    item = PlanItem(folder.name, folder)
    entry = old.get(folder.name, {})
    if folder.name in mapping:
        item.repo_id, item.repo_from = mapping[folder.name], "--map"
    elif _repo_of(entry):
        item.repo_id, item.repo_from = _repo_of(entry), manifest_name or ""
    else:
        meta = folder / "cache_metadata.json"
        try:
            named = json.loads(meta.read_text()).get("model_name") if meta.is_file() else None
        except (OSError, ValueError, AttributeError):
            named = None
        if isinstance(named, str) and _layout.is_repo_id(named) and "/" in named:
            item.repo_id, item.repo_from = named, f"{folder.name}/cache_metadata.json"
        else:
            item.problems.append(f"no repo id: none in {manifest_name or 'a manifest'} or cache_metadata.json; "
                                 f"pass --map {folder.name}=org/name")
    try:
        config = json.loads((folder / _layout.CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        item.problems.append(f"{folder / _layout.CONFIG_FILE} is not valid JSON ({err})")
        config = {}
    item.model_type, why = _model_type(entry, config if isinstance(config, dict) else {})
    if why:
        item.problems.append(why)
    all_files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    item.weights, pickles = _weights(folder, all_files)
    keep = [f for f in all_files if f not in pickles and f not in SKIPPED_FILES]
    item.left = [f"{f} (the original's bookkeeping)" for f in all_files if f in SKIPPED_FILES]
    if item.weights == "safetensors":
        item.left += [f"{f} (pickle; the safetensors weights are used)" for f in pickles]
    elif item.weights == "pickle":
        shards = [f for f in pickles if f != "pytorch_model.bin"]
        if not allow_pickle:
            item.problems.append(f"weights are pickle only ({', '.join(pickles)}), which can run code when loaded; "
                                 "if you trust them, pass --allow-pickle to convert them to model.safetensors")
        elif shards or "pytorch_model.bin" not in pickles:
            item.problems.append(f"only a single pytorch_model.bin is converted, not {', '.join(pickles)}; re-save the "
                                 "model with save_pretrained(safe_serialization=True) first")
        else:
            item.convert = "pytorch_model.bin"
    else:
        item.problems.append("no weights (model.safetensors or pytorch_model.bin)")
    item.files = keep
    return item


def convert_pickle(src: Path, dest: Path) -> None:
    """``pytorch_model.bin`` -> ``model.safetensors`` (tensors only: ``torch.load(weights_only=True)``)."""
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError as err:
        raise ConfigurationError(f"converting {src} needs torch and safetensors ({err}); install them with: "
                                 "pip install 'smart-model-manager[torch]'") from err
    state = torch.load(src, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FormatError("expected a state dict of tensors", path=src)
    # shared storage (tied weights) cannot be saved as is; transformers re-ties them on load
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, str(dest), metadata={"format": "pt"})


@dataclass(frozen=True)
class MigrateResult:
    target: Path
    manifest_path: Path
    models: dict[str, str]       # repo id -> commit
    files: int
    bytes: int


def migrate(plan: Plan) -> MigrateResult:
    """Carry out a complete plan: stage, import each model verified, write the manifest last, re-validate."""
    from .pull import ensure_writable, provision_from_folder, update_manifest
    from .validate import validate

    if not plan.ok:
        raise ConfigurationError("the plan has problems, nothing was written:\n  " + "\n  ".join(
            plan.problems or [f"no model folder in {plan.source}"]))
    plan.target.mkdir(parents=True, exist_ok=True)
    ensure_writable(plan.target, what="target")
    staging = plan.target / _layout.tmp_name("migrate")
    entries: dict[str, Any] = {}
    commits: dict[str, str] = {}
    n_files = n_bytes = 0
    try:
        for item in plan.items:
            stage = staging / item.name
            stage.mkdir(parents=True)
            for rel in item.files:  # links, not copies: the source is read once, by the importer
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                os.symlink((item.folder / rel).resolve(), stage / rel)
            if item.convert:
                convert_pickle(item.folder / item.convert, stage / "model.safetensors")
            assert item.repo_id is not None and item.model_type is not None
            result = provision_from_folder(stage, plan.target, item.repo_id, model_type=item.model_type,
                                           alias=item.name, write_manifest=False)
            entries[item.repo_id] = result.entry
            commits[item.repo_id] = result.commit
            n_files += len(result.files)
            n_bytes += sum(size for size, _ in result.files.values())
            log.info("migrated %s -> %s@%s", item.folder, item.repo_id, result.commit[:12])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest_path = update_manifest(plan.target, entries, lock_digest=None)
    report = validate(plan.target, mode="full", require_manifest=True)
    if not report.ok:
        first = report.errors[0]
        raise IntegrityError(f"{plan.target} does not validate after migration: {first.kind} {first.where}: "
                             f"{first.message}", path=first.file, expected=first.expected, actual=first.actual)
    return MigrateResult(plan.target, manifest_path, commits, n_files, n_bytes)


__all__ = ["MigrateResult", "Plan", "PlanItem", "convert_pickle", "make_plan", "migrate", "parse_map",
           "read_old_manifest"]
