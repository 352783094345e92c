"""`smm sign`: sign models.lock in the OpenSSF Model Signing format (offline, with a private key)."""

from __future__ import annotations

from pathlib import Path

import click

from ..settings import Settings
from .artifacts import _lock_path


@click.command("sign")
@click.option("--lock", "lock_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The lock to sign. Default: SMM_LOCK, else ./models.lock.")
@click.option("--key", "key", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The signer's PEM private key (elliptic curve). It never goes into a cluster.")
@click.option("--signature", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the signature. Default: the lock's path + .sig.")
def sign(lock_path: Path | None, key: Path, signature: Path | None) -> None:
    """Sign models.lock: since the lock pins every file's sha256, the signature covers every model byte.

    \b
    Examples:
      smm sign --key approver.key.pem                 # writes models.lock.sig
      model_signing verify key models.lock --signature models.lock.sig --public_key approver.pub.pem
      smm validate --verify-signature --public-key approver.pub.pem --dir /app/models
    """
    from ..ops.signing import sign_lock

    path = _lock_path(lock_path, Settings.from_env())
    out = sign_lock(path, key, signature)
    click.echo(f"signed {path} -> {out}")
