"""`smm export onnx MODEL_OR_PATH`: ONNX fp32 + int8 (quality-gated) next to a model.

A folder is exported in place (``<folder>/onnx/``). A repo id is looked up in the local cache and
the files are added to its snapshot as blobs + symlinks (``store.add_files``), so the snapshot
stays a valid Hugging Face cache entry and a volume provisioned from it carries the ONNX files.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import click

from .._layout import MANIFEST_NAME
from ..onnx.quantize import INT8_RECIPES
from ..settings import Settings
from ..sources.known_models import resolve_alias
from ..store import cache as store
from .models import cli_progress

log = logging.getLogger(__name__)


@click.group("export")
def export() -> None:
    """Export models to faster runtimes."""


def _snapshot_of(path: Path) -> tuple[Path, str, str] | None:
    """(cache root, repo id, commit) when ``path`` is ``<root>/models--o--n/snapshots/<commit>``."""
    path = path.resolve()
    if path.parent.name != "snapshots" or not (path.parents[1] / "blobs").is_dir():
        return None
    repo_id = store.repo_id_from_folder(path.parents[1].name)
    return (path.parents[2], repo_id, path.name) if repo_id else None


@export.command("onnx")
@click.argument("model_or_path")
@click.option("--int8/--no-int8", default=True, show_default=True,
              help="Also write model.int8.onnx (kept only if it passes the quality gate).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="HF-cache folder holding the model (default: MODEL_CACHE_DIR / HF_HUB_CACHE / "
                   "~/.cache/huggingface/hub).")
@click.option("--type", "model_type", type=click.Choice(["sentiment", "embeddings"]), default=None,
              help="Model type (default: from config.json architectures).")
@click.option("--revision", default="main", show_default=True, help="Cache revision of a repo id.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="int8 gate threshold for the LOWER 95% bound of the label agreement (Wilson) / mean "
                   "cosine vs fp32 (default 0.99).")
@click.option("--samples", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Your golden set, scored first: a .txt file (one text per line) or .jsonl with 'text' and "
                   "an optional 'label'. Empty files, duplicate rows and unknown labels are refused. Use "
                   "production-like texts, not the model's training data.")
@click.option("--min-samples", type=click.IntRange(min=1), default=None,
              help="Gate texts in all; the package's texts fill up after yours (default 3000, at least 1000 advised).")
@click.option("--recipe", "recipes", multiple=True, type=click.Choice(INT8_RECIPES),
              help="int8 recipe to try, in order (repeatable; default: the ladder in docs/onnx.md).")
def onnx(model_or_path: str, int8: bool, cache_dir: Path | None, model_type: str | None,
         revision: str, threshold: float | None, samples: Path | None, min_samples: int | None,
         recipes: tuple[str, ...]) -> None:
    """Export MODEL_OR_PATH to onnx/model.onnx (+ onnx/model.int8.onnx if its gate passes).

    \b
    Examples:
      smm export onnx ProsusAI/finbert            # a model in the local cache
      smm export onnx ./my-model --no-int8        # a plain folder, in place
      smm export onnx ./my-model --samples held_out.txt   # gate on your own texts first
      smm export onnx ./my-model --recipe all-u8u8 --recipe static-qdq
      SMM_BACKEND=onnx smm analyze "Stocks rally" # then use it
    """
    from ..onnx.export import DEFAULT_INT8_RECIPES, export_onnx, infer_model_type
    from ..onnx.gate import MIN_SAMPLES

    given = Path(model_or_path).expanduser()
    target: tuple[Path, str, str] | None
    if given.is_dir():
        folder = given
        target = _snapshot_of(given)
    else:
        repo_id = resolve_alias(model_or_path)
        root = cache_dir or Settings.from_env().cache_dir
        snap = store.find_snapshot(root, repo_id, revision)
        if snap is None:
            raise click.ClickException(
                f"{repo_id}@{revision} is not in the cache {root} and {model_or_path!r} is not a "
                "folder; download it first (e.g. load it once in dev, or `smm pull`), or pass "
                "--cache-dir")
        folder, target = snap, (root, repo_id, snap.name)
    if target is not None and (target[0] / MANIFEST_NAME).is_file():
        raise click.ClickException(
            f"{target[0]} is a provisioned volume (it has {MANIFEST_NAME}): it holds only what a lock pins, "
            "so exported files there would fail `smm validate` and the loaders' checks. Export in a build "
            "cache instead, then lock against a mirror of it and pull (docs/kubernetes.md, \"A Hub model "
            "without ONNX files\"); nothing was written")
    mtype = model_type or infer_model_type(folder)
    if samples is not None and int8:  # a bad golden file fails now, not after torch has loaded
        from ..onnx.export import check_golden_file

        check_golden_file(folder, mtype, samples)
    gate_args: dict[str, Any] = {"golden_file": samples, "min_samples": min_samples or MIN_SAMPLES,
                                 "int8_recipes": recipes or DEFAULT_INT8_RECIPES}
    click.echo(f"exporting {folder} ({mtype}) to ONNX...", err=True)

    if target is None:
        with cli_progress() as progress:
            report = export_onnx(folder, mtype, int8=int8, int8_threshold=threshold, progress=progress,
                                 **gate_args)
        lines = report.lines()
    else:
        root, repo_id, commit = target
        with cli_progress() as progress, tempfile.TemporaryDirectory(prefix="smm-onnx-") as tmp:
            report = export_onnx(folder, mtype, out_dir=Path(tmp), int8=int8,
                                 int8_threshold=threshold, progress=progress, **gate_args)
            files = {f"onnx/{p.name}": p for p in sorted(Path(tmp).iterdir()) if p.is_file()}
            store.add_files(root, repo_id, commit, files)
            lines = [line.replace(tmp, str(folder / "onnx")) for line in report.lines()]
        stale = folder / "onnx" / "model.int8.onnx"
        if not report.int8_accepted and (stale.is_symlink() or stale.exists()):
            stale.unlink()  # quality.json already says "not accepted"; do not leave it lying around
        lines.append(f"added {', '.join(sorted(files))} to {repo_id}@{commit[:12]} in {root}")
    for line in lines:
        click.echo(line)
