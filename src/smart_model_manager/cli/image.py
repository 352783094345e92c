"""`smm image build|push|pull`: models as OCI images.

Thin: parse arguments, call :mod:`smart_model_manager.image`, print a summary (``--json`` for scripts).
Exceptions become exit codes in ``cli.main`` (0 ok, 1 failure, 2 usage).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from .. import lockfile
from ..settings import Settings
from .artifacts import _lock_path


@click.group("image")
def image() -> None:
    """Models as OCI images: build a verified volume image, push it to / pull it from a registry.

    \b
    Examples:
      smm image build --output build/models-oci --tag v1          # from the local cache
      smm image push build/models-oci registry.example.com/team/models:v1
      smm image pull registry.example.com/team/models@sha256:... build/models-oci
    """


@image.command("build")
@click.option("--lock", "lock_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The lock to pack. Default: SMM_LOCK, else ./models.lock.")
@click.option("--from", "source", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A cache or volume holding the locked files. Default: MODEL_CACHE_DIR / HF_HUB_CACHE.")
@click.option("--endpoint", default=None,
              help="Instead of --from: download the locked files (verified) from this mirror or hub first.")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The OCI image layout folder to write (replaced atomically if it holds one).")
@click.option("--tag", default="latest", show_default=True, help="Tag recorded in the layout's index.json.")
@click.option("--platform", default="linux/amd64", show_default=True, help="OS/ARCH recorded in the config.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Extra annotation, e.g. org.opencontainers.image.source=https://... (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def build(lock_path: Path | None, source: Path | None, endpoint: str | None, output: Path, tag: str,
          platform: str, labels: tuple[str, ...], as_json: bool) -> None:
    """Pack the locked models into a reproducible OCI image whose root is a production volume.

    Every file is checked against the lock's sha256 before it is packed; the same lock and files give
    the same digest anywhere, any time.
    """
    from ..image.build import build_image

    settings = Settings.from_env()
    lock = lockfile.load(_lock_path(lock_path, settings))
    extra = {}
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--label {item!r}: expected KEY=VALUE")
        extra[key] = value
    if source is not None and endpoint is not None:
        raise click.UsageError("--from and --endpoint exclude each other")
    if endpoint is None:
        report = build_image(lock, (source or settings.cache_dir).expanduser(), output, tag=tag, platform=platform,
                             labels=extra)
    else:
        from ..pull import pull

        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.download-", dir=output.parent))
        try:
            pull(lock, cache_dir=tmp, endpoint=endpoint, token=settings.token, timeout=settings.timeout,
                 retries=settings.retries)
            report = build_image(lock, tmp, output, tag=tag, platform=platform, labels=extra)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if as_json:
        click.echo(json.dumps(_build_json(report), indent=2, sort_keys=True))
        return
    click.echo(f"wrote {report.path} ({tag}): {report.digest}")
    click.echo(f"  {report.files} file(s), {len(report.layers)} layer(s), {report.size / 1e6:,.1f} MB "
               f"in {report.seconds:.1f}s")
    for la in report.layers:
        click.echo(f"  {la.digest[7:19]}  {la.size / 1e6:>10,.1f} MB  {la.holds}")


def _build_json(report: Any) -> dict[str, Any]:
    return {"path": str(report.path), "tag": report.tag, "digest": report.digest, "config": report.config_digest,
            "files": report.files, "size": report.size, "seconds": report.seconds,
            "layers": [{"digest": la.digest, "size": la.size, "holds": la.holds} for la in report.layers]}
