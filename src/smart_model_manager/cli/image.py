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

from ..formats import lockfile
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
        from ..ops.pull import pull

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


def _client(registry: str, plain_http: bool, auth_file: Path | None) -> Any:
    from ..image.registry import Credentials, RegistryClient

    s = Settings.from_env()
    creds = Credentials.resolve(registry, username=s.registry_username, password=s.registry_password,
                                token=s.registry_token, auth_file=auth_file or s.registry_auth_file)
    return RegistryClient(registry, credentials=creds, plain_http=plain_http, timeout=s.timeout)


_plain_http = click.option("--plain-http", is_flag=True,
                           help="Talk HTTP, not HTTPS (a registry on 127.0.0.1 or inside the cluster only).")
_auth_file = click.option("--auth-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                          help="A docker config.json with credentials. Default: SMM_REGISTRY_AUTH_FILE; "
                               "or SMM_REGISTRY_USERNAME/SMM_REGISTRY_PASSWORD, SMM_REGISTRY_TOKEN.")


@image.command("push")
@click.argument("layout", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("reference")
@_plain_http
@_auth_file
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def push(layout: Path, reference: str, plain_http: bool, auth_file: Path | None, as_json: bool) -> None:
    """Push the image in LAYOUT to REFERENCE (REGISTRY/REPO[:TAG]), keeping its digest.

    Blobs the registry has are skipped; the manifest goes last, so an interrupted push tags nothing
    and a rerun finishes it. Prints REGISTRY/REPO:TAG@DIGEST: pin that in the manifests.

    \b
    Examples:
      smm image push build/models-oci registry.example.com/team/models:v1
      SMM_REGISTRY_AUTH_FILE=~/.docker/config.json smm image push build/models-oci ghcr.io/org/models:v2
    """
    from ..image.registry import parse_reference
    from ..image.transfer import push as run_push

    ref = parse_reference(reference)
    report = run_push(layout, ref, _client(ref.registry, plain_http, auth_file))
    if as_json:
        click.echo(json.dumps(report.__dict__, indent=2, sort_keys=True))
        return
    click.echo(f"pushed {report.reference}")
    click.echo(f"  {report.blobs_uploaded} blob(s) uploaded ({report.bytes_uploaded / 1e6:,.1f} MB), "
               f"{report.blobs_skipped} already there, in {report.seconds:.1f}s")


@image.command("pull")
@click.argument("reference")
@click.argument("layout", type=click.Path(file_okay=False, path_type=Path))
@_plain_http
@_auth_file
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def pull(reference: str, layout: Path, plain_http: bool, auth_file: Path | None, as_json: bool) -> None:
    """Pull REFERENCE into the OCI layout folder LAYOUT, every blob verified; blobs already in LAYOUT
    (an older version) are reused. The folder is replaced atomically.

    \b
    Examples:
      smm image pull registry.example.com/team/models@sha256:... build/models-oci
    """
    from ..image.registry import parse_reference
    from ..image.transfer import pull as run_pull

    ref = parse_reference(reference)
    report = run_pull(ref, layout, _client(ref.registry, plain_http, auth_file))
    if as_json:
        click.echo(json.dumps({**report.__dict__, "path": str(report.path)}, indent=2, sort_keys=True))
        return
    click.echo(f"pulled {report.reference} into {report.path}")
    click.echo(f"  {report.blobs_downloaded} blob(s) downloaded ({report.bytes_downloaded / 1e6:,.1f} MB), "
               f"{report.blobs_reused} reused ({report.bytes_reused / 1e6:,.1f} MB), in {report.seconds:.1f}s")
