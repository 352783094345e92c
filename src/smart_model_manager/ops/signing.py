"""Signed locks: who approved this model set (OpenSSF Model Signing format, offline, key based).

``sign_lock`` writes ``models.lock.sig`` next to the lock: a Sigstore bundle (DSSE envelope around an
in-toto statement) as the ``model-signing`` package writes it for a one-file "model", the lock. Because
the lock pins the sha256 of every file of every model, a valid signature on the lock covers every byte
those models load. ``model_signing verify key models.lock --signature models.lock.sig --public_key
pub.pem`` checks the same file on its own.

``verify_lock`` accepts a signature made by ANY of the given public keys (two during a key rotation) and
refuses, with one line naming the problem, a missing, malformed or truncated signature, one by another
key, and one over other bytes (a tampered lock, or another lock's signature). It only reads.

``model_signing`` is imported inside the functions: ``import smart_model_manager`` never loads it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

from ..errors import BackendError, ConfigurationError, SignatureError

SUFFIX = ".sig"
INSTALL = "pip install 'smart-model-manager[sign]'"


def signature_path(lock_path: Path) -> Path:
    return Path(str(lock_path) + SUFFIX)


def _model_signing():  # type: ignore[no-untyped-def]
    try:
        import model_signing
    except ImportError as err:
        raise BackendError(f"signing needs the model-signing package ({err}); install it: {INSTALL}") from err
    return model_signing


def sign_lock(lock_path: Path, private_key: Path, signature: Path | None = None) -> Path:
    """Sign ``lock_path`` with the PEM private key; the signature is written atomically. Returns its path."""
    ms = _model_signing()
    lock_path, out = Path(lock_path), Path(signature or signature_path(lock_path))
    if not lock_path.is_file():
        raise ConfigurationError(f"{lock_path} does not exist; create it with `smm lock` first")
    if not Path(private_key).is_file():
        raise ConfigurationError(f"private key {private_key} does not exist (a PEM elliptic-curve key, e.g. from "
                                 "`openssl ecparam -name prime256v1 -genkey -noout -out key.pem`)")
    tmp = out.parent / f".tmp-{out.name}.{uuid.uuid4().hex}"
    try:
        ms.signing.Config().use_elliptic_key_signer(private_key=private_key).sign(lock_path, tmp)
        verify_lock(lock_path, [_public_from_private(private_key)], tmp)  # a bad key must not ship a signature
        os.replace(tmp, out)
    except ValueError as err:
        raise ConfigurationError(f"cannot sign {lock_path} with {private_key}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _public_from_private(private_key: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(private_key).read_bytes(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def signed_digest(signature: Path) -> str:
    """The lock sha256 a signature file covers (read from its statement, unverified), for messages.
    Raises SignatureError for a file that is not a model-signing bundle."""
    try:
        bundle = json.loads(Path(signature).read_bytes())
        statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
        return "sha256:" + str(statement["predicate"]["resources"][0]["digest"])
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError) as err:
        raise SignatureError(f"{signature} is not a model-signing signature bundle ({type(err).__name__}: "
                             f"{str(err)[:120]}); re-sign the lock with `smm sign`", path=signature) from err


def verify_lock(lock_path: Path, public_keys: Sequence[Path | bytes], signature: Path | None = None) -> str:
    """Check the signature of ``lock_path``; returns a description of the key that verified it."""
    lock_path = Path(lock_path)
    sig = Path(signature or signature_path(lock_path))
    if not public_keys:
        raise ConfigurationError("signature verification needs a public key: --public-key PEM or "
                                 "SMM_SIGNATURE_PUBLIC_KEYS=a.pem[,b.pem]")
    try:
        covered = signed_digest(sig)
    except FileNotFoundError:
        raise SignatureError(f"{lock_path} has no signature ({sig} does not exist); sign it with `smm sign "
                             f"--key KEY` and ship {sig.name} with it", path=sig) from None
    actual = "sha256:" + hashlib.sha256(lock_path.read_bytes()).hexdigest()
    if covered != actual:
        raise SignatureError(f"{sig} signs other bytes than {lock_path} (signed {covered}, the lock is {actual}): "
                             "the lock was changed after signing, or this is another lock's signature",
                             path=lock_path, expected=covered, actual=actual)
    ms = _model_signing()
    reasons = []
    for key in public_keys:
        name, path = _key_file(key, sig.parent)
        try:
            ms.verifying.Config().use_elliptic_key_verifier(public_key=path).verify(lock_path, sig)
            return name
        except (ValueError, OSError) as err:
            reasons.append(f"{name}: {str(err).splitlines()[0][:160]}")
        finally:
            if isinstance(key, bytes):
                path.unlink(missing_ok=True)
    raise SignatureError(f"{sig} does not verify {lock_path} with any accepted key ({'; '.join(reasons)})",
                         path=sig)


def _key_file(key: Path | bytes, where: Path) -> tuple[str, Path]:
    if isinstance(key, bytes):  # model_signing reads keys from files
        import tempfile

        fd, name = tempfile.mkstemp(suffix=".pem")
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return "the signing key's public half", Path(name)
    if not Path(key).is_file():
        raise ConfigurationError(f"public key {key} does not exist (SMM_SIGNATURE_PUBLIC_KEYS / --public-key)")
    return str(key), Path(key)


__all__ = ["SUFFIX", "sign_lock", "signature_path", "signed_digest", "verify_lock"]
