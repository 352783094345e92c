"""`smm validate`: check a volume (default SMM_VOLUME_DIR) or a cache against its manifest and models.lock.

Kept light on purpose: it is the Kubernetes startup probe, so it imports no huggingface_hub, rich or ML
library; only the int8 re-check (``--full`` or ``--int8-verdicts``, when a published int8 model is there)
imports onnxruntime. Exit codes: 0 ok, 1 findings, 2 usage error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..formats.lockfile import DEFAULT_NAME
from ..ops.validate import ValidationReport, validate as run_validate, wait_until_valid
from ..settings import Settings


@click.command("validate")
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
              help="Folder to check: a volume with model-metadata.yaml, or a cache. Default: SMM_VOLUME_DIR "
                   "(which must hold a manifest).")
@click.option("--cache", "use_cache", is_flag=True,
              help="Check the local cache (MODEL_CACHE_DIR / HF_HUB_CACHE) against models.lock instead.")
@click.option("--lock", "lock_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="models.lock to compare with. Default: SMM_LOCK, else ./models.lock if present.")
@click.option("--no-lock", is_flag=True, help="Do not compare with any models.lock.")
@click.option("--quick", "quick", is_flag=True, help="Presence, sizes, manifest vs lock; no hashing (default).")
@click.option("--full", "full", is_flag=True, help="Also re-hash every file (sha256), and re-check each published "
              "int8 model on this CPU against its fp32 references (a warning when this CPU disagrees).")
@click.option("--int8-verdicts", "int8_verdicts", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Re-check every published int8 model on this CPU (also in --quick mode, trusting the recorded "
              "fp32 digest) and write what was found to this file; a process started with SMM_INT8_VERDICTS "
              "pointing at it uses those verdicts instead of re-checking at load (a pod's init container).")
@click.option("--strict", is_flag=True, help="Warnings (leftover snapshots, unlisted models) fail too.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for machines).")
@click.option("--wait", is_flag=True, help="Poll until the folder validates (the Kubernetes init container: it "
              "releases once the volume holds what THIS lock pins), then exit 0; exit 1 with the findings after "
              "--timeout. A progress line goes to stderr at least every 10 s.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds --wait polls before it gives up.")
@click.option("--interval", type=click.FloatRange(min=0.05, max=10), default=2.0, show_default=True,
              help="Seconds between polls with --wait.")
@click.option("--verify-signature", is_flag=True,
              help="First check the lock's signature (LOCK.sig); refuse before looking at any model file. "
                   "On by default when SMM_SIGNATURE_PUBLIC_KEYS or SMM_VERIFY_SIGNATURE is set.")
@click.option("--public-key", "public_keys", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="An accepted signer's public key (PEM; repeat for two keys during a rotation). "
                   "Default: SMM_SIGNATURE_PUBLIC_KEYS (comma-separated).")
@click.option("--signature", "signature", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The signature file. Default: the lock's path + .sig.")
def validate(directory: Path | None, use_cache: bool, lock_path: Path | None, no_lock: bool, quick: bool,
             full: bool, int8_verdicts: Path | None, strict: bool, as_json: bool, wait: bool, timeout: float,
             interval: float, verify_signature: bool, public_keys: tuple[Path, ...], signature: Path | None) -> None:
    """Check that every model file is present and intact; exit 1 with one line per finding.

    Exit 0 when nothing is wrong or there are only warnings (leftovers that cannot change what is loaded,
    such as old snapshots after re-provisioning; --strict makes them fail), 1 on errors, 2 on usage errors.

    \b
    Examples:
      smm validate --quick                           # the startup probe: the volume at SMM_VOLUME_DIR
      smm validate --full --dir /app/models          # re-hash everything on a volume
      smm validate --cache --lock models.lock        # is my local cache what the lock pins?
      smm validate --json --dir /mnt/models | jq .findings
      smm validate --wait --timeout 900 --lock /app/lock/models.lock   # init container: block until provisioned
      smm validate --verify-signature --public-key approver.pub.pem --lock models.lock --dir /app/models
      smm validate --wait --int8-verdicts /tmp/smm-int8-verdicts.json  # ... and re-check int8 on this node
    """
    if quick and full:
        raise click.UsageError("--quick and --full exclude each other")
    if directory is not None and use_cache:
        raise click.UsageError("--dir and --cache exclude each other")
    if lock_path is not None and no_lock:
        raise click.UsageError("--lock and --no-lock exclude each other")
    settings = Settings.from_env()
    if use_cache:
        root, require = settings.cache_dir, False
    elif directory is None or _same(directory, settings.volume_dir):
        # The volume must carry its manifest (written last): without it provisioning did not finish, and a
        # pod must not start on it even if every locked file happens to be there already.
        root, require = settings.volume_dir if directory is None else directory, True
    else:
        root, require = directory, None  # any other folder: a volume if it has a manifest, else a cache
    lock_path, lock_from = _which_lock(lock_path, no_lock, settings)
    # every run says which lock it compares with: a models.lock left in the working directory is used silently
    # otherwise, and a validate that disagrees with an earlier one is then a mystery
    if not as_json:  # JSON carries it as lock_from, so stdout and stderr together still parse
        click.echo(f"lock: {lock_path} ({lock_from})" if lock_path else f"lock: none ({lock_from})", err=True)
    keys = public_keys or settings.signature_public_keys
    if verify_signature or settings.verify_signature or keys:
        _check_signature(lock_path, keys, signature)
    mode = "full" if full else "quick"
    if wait:
        report = wait_until_valid(root, lock=lock_path, mode=mode, require_manifest=require, timeout=timeout,
                                  interval=interval, progress=_progress(root, lock_path, timeout))
        if not report.ok:
            click.echo(f"timed out after {timeout:g}s waiting for {root} to validate"
                       + (f" against {lock_path}" if lock_path else ""), err=True)
    else:
        report = run_validate(root, lock=lock_path, mode=mode, require_manifest=require)
    int8 = _int8_checks(root, hash_fp32=mode == "full") if (mode == "full" or int8_verdicts) and report.ok else []
    if int8_verdicts is not None and report.ok:
        from ..loaders.int8_check import write_verdicts

        write_verdicts(int8_verdicts, int8)
    if as_json:
        click.echo(json.dumps({**report.as_dict(), "lock_from": lock_from} | ({"int8_checks": int8} if int8 else {}), indent=2,
                              sort_keys=True))
    else:
        click.echo(render(report))
        for c in int8:
            what = {"passed": "int8", "skipped": "int8 (skipped)"}.get(c["status"], "int8 (warning)")
            then = " (processes on this CPU serve fp32)" if c["status"] in ("fallback", "not-gated") else ""
            click.echo(f"{what:<9} {c['path']}: {c['status']}{then}: {c['reason']}")
    disagree = any(c["status"] in ("fallback", "not-gated") for c in int8)
    if not report.ok or (strict and (report.warnings or disagree)):
        raise FindingsFound(len(report.findings))


def _check_signature(lock_path: Path | None, keys: tuple[Path, ...], signature: Path | None) -> None:
    """Before any model file is read: the lock must carry a signature by an accepted key."""
    from ..ops.signing import verify_lock

    if lock_path is None:
        raise click.UsageError("signature verification needs the lock: --lock PATH or SMM_LOCK")
    if not keys:
        raise click.UsageError("signature verification needs a public key: --public-key PEM or "
                               "SMM_SIGNATURE_PUBLIC_KEYS=a.pem[,b.pem]")
    who = verify_lock(lock_path, keys, signature)
    click.echo(f"signature OK: {lock_path} signed by {who}", err=True)


def _which_lock(given: Path | None, no_lock: bool, settings: Settings) -> tuple[Path | None, str]:
    """The lock to compare with and where it came from, in words."""
    if no_lock:
        return None, "--no-lock: the manifest alone"
    if given is not None:
        return given, "from --lock"
    if settings.lock_path is not None:
        return settings.lock_path, "from SMM_LOCK"
    if Path(DEFAULT_NAME).is_file():
        return Path(DEFAULT_NAME), (f"found in the working directory {Path.cwd()}; --lock FILE or --no-lock to "
                                    "choose another")
    return None, f"no --lock, no SMM_LOCK, no {DEFAULT_NAME} in the working directory: the manifest alone"


class FindingsFound(click.ClickException):
    """Exit 1 after the report is printed. A ClickException (not ``click.exceptions.Exit``) because
    ``cli.main(standalone_mode=False)`` swallows Exit and returns its code, which ``main()`` drops."""

    exit_code = 1

    def __init__(self, count: int):
        super().__init__(f"{count} finding(s)")

    def show(self, file: object = None) -> None:  # the report already said everything
        pass


def _progress(root: Path, lock_path: Path | None, timeout: float):  # type: ignore[no-untyped-def]
    against = f" to hold what {lock_path} pins" if lock_path else " to validate"

    def show(report: ValidationReport, elapsed: float) -> None:
        first = report.errors[0] if report.errors else None
        why = f"{first.kind} {first.where}: {first.message}" if first else "not yet"
        if first is not None and (first.expected or first.actual):
            why += f" (expected {first.expected or '-'}, actual {first.actual or '-'})"
        click.echo(f"waiting for {root}{against} ({elapsed:.0f}s of {timeout:g}s): {len(report.errors)} "
                   f"error(s); first: {why}", err=True)

    return show


def _int8_checks(root: Path, *, hash_fp32: bool) -> list[dict[str, Any]]:
    """--full: every published int8 file re-checked on this CPU against its fp32 references (a warning, never
    an error: a process here falls back to fp32 by itself). Imports onnxruntime only when there is one."""
    if not any(root.glob("models--*/snapshots/*/onnx/model.int8.onnx")):
        return []
    from ..loaders.int8_check import check_tree

    return check_tree(root, hash_fp32=hash_fp32)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def render(report: ValidationReport) -> str:
    """One summary line, then one line per finding: kind, file(:line), message, expected, actual."""
    against = f", against {report.lock}" if report.lock else ""
    n_err, n_warn = len(report.errors), len(report.warnings)
    warned = f"{n_warn} warning(s)" if n_warn else ""
    if report.ok:
        status = f"OK with {warned}" if warned else "OK"
    else:
        status = f"FAILED with {n_err} error(s)" + (f", {warned}" if warned else "")
    lines = [f"{status}: {report.directory} ({report.mode}{against}): {report.models_checked} model(s), "
             f"{report.files_checked} file(s) checked in {report.seconds * 1000:.1f} ms"]
    for f in report.findings:
        detail = ""
        if f.expected is not None or f.actual is not None:
            detail = f" (expected {f.expected or '-'}, actual {f.actual or '-'})"
        kind = f.kind if f.severity == "error" else f"{f.kind} (warning)"
        lines.append(f"{kind:<9} {f.where}: {f.message}{detail}")
    return "\n".join(lines)
