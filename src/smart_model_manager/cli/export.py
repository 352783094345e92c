"""`smm export onnx MODEL_OR_PATH`: ONNX fp32 + int8 (quality-gated) next to a model.

A folder is exported in place (``<folder>/onnx/``). A repo id is looked up in the local cache and
the files are added to its snapshot as blobs + symlinks (``store.add_files``), so the snapshot
stays a valid Hugging Face cache entry and a volume provisioned from it carries the ONNX files.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import click

from .. import store
from ..known_models import ALIASES
from ..settings import Settings

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
@click.option("--threshold", type=float, default=None,
              help="int8 gate threshold (default 0.99: label agreement / mean cosine vs fp32).")
def onnx(model_or_path: str, int8: bool, cache_dir: Path | None, model_type: str | None,
         revision: str, threshold: float | None) -> None:
    """Export MODEL_OR_PATH to onnx/model.onnx (+ onnx/model.int8.onnx if its gate passes).

    \b
    Examples:
      smm export onnx ProsusAI/finbert            # a model in the local cache
      smm export onnx ./my-model --no-int8        # a plain folder, in place
      SMM_BACKEND=onnx smm analyze "Stocks rally" # then use it
    """
    from ..export import export_onnx, infer_model_type

    given = Path(model_or_path).expanduser()
    target: tuple[Path, str, str] | None
    if given.is_dir():
        folder = given
        target = _snapshot_of(given)
    else:
        repo_id = ALIASES.get(model_or_path.lower(), model_or_path)
        root = cache_dir or Settings.from_env().cache_dir
        snap = store.find_snapshot(root, repo_id, revision)
        if snap is None:
            raise click.ClickException(
                f"{repo_id}@{revision} is not in the cache {root} and {model_or_path!r} is not a "
                "folder; download it first (e.g. load it once in dev, or `smm pull`), or pass "
                "--cache-dir")
        folder, target = snap, (root, repo_id, snap.name)
    mtype = model_type or infer_model_type(folder)
    click.echo(f"exporting {folder} ({mtype}) to ONNX...", err=True)

    if target is None:
        report = export_onnx(folder, mtype, int8=int8, int8_threshold=threshold)
        lines = report.lines()
    else:
        root, repo_id, commit = target
        with tempfile.TemporaryDirectory(prefix="smm-onnx-") as tmp:
            report = export_onnx(folder, mtype, out_dir=Path(tmp), int8=int8,
                                 int8_threshold=threshold)
            files = {f"onnx/{p.name}": p for p in sorted(Path(tmp).iterdir()) if p.is_file()}
            store.add_files(root, repo_id, commit, files)
            lines = [line.replace(tmp, str(folder / "onnx")) for line in report.lines()]
        stale = folder / "onnx" / "model.int8.onnx"
        if not report.int8_accepted and (stale.is_symlink() or stale.exists()):
            stale.unlink()  # quality.json already says "not accepted"; do not leave it lying around
        lines.append(f"added {', '.join(sorted(files))} to {repo_id}@{commit[:12]} in {root}")
    for line in lines:
        click.echo(line)
