"""Signed locks with the real `model-signing` package (OpenSSF Model Signing, offline, EC keys): sign,
verify, and every bad case refused with one line, before any model file is read, files untouched."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smart_model_manager.cli.main import main
from smart_model_manager.errors import SignatureError

try:
    from ._image_fixtures import TwoVersions, two_versions
except ImportError:
    from _image_fixtures import TwoVersions, two_versions

pytest.importorskip("model_signing", reason="pip install 'smart-model-manager[sign]'")
pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
BIN = Path(sys.executable).parent


def keypair(where: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = where / f"{name}.key.pem", where / f"{name}.pub.pem"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[TwoVersions, Path]:
    tmp = tmp_path_factory.mktemp("signing")
    return two_versions(tmp), tmp


def state(*roots: Path) -> dict[str, str]:
    """Every file's bytes under the roots (hash), to prove a refusal changed nothing."""
    out = {}
    for root in roots:
        for p in sorted([root] if root.is_file() else root.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() + str(p.stat().st_mtime_ns)
    return out


def refused(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main(args) == 1
    captured = capsys.readouterr()
    # `smm validate` first says which lock it compares with; then the one refusal line and the debug hint
    err = [line for line in captured.err.strip().splitlines() if not line.startswith("lock: ")]
    assert len(err) == 2 and err[1].startswith("(set SMM_DEBUG=1"), err
    assert "OK" not in captured.out and "FAILED" not in captured.out  # no model file was looked at
    return err[0]


def test_sign_then_verify_with_smm_and_with_model_signing(setup: tuple[TwoVersions, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    v, _ = setup
    lock = tmp_path / "models.lock"
    shutil.copy(v.lock1, lock)
    priv, pub = keypair(tmp_path, "approver")
    assert main(["sign", "--lock", str(lock), "--key", str(priv)]) == 0
    assert (tmp_path / "models.lock.sig").is_file()
    capsys.readouterr()
    assert main(["validate", "--verify-signature", "--public-key", str(pub), "--lock", str(lock),
                 "--dir", str(v.cache)]) == 0
    out = capsys.readouterr()
    assert "signature OK" in out.err and out.out.startswith("OK")
    r = subprocess.run([str(BIN / "model_signing"), "verify", "key", str(lock), "--signature",
                        str(tmp_path / "models.lock.sig"), "--public_key", str(pub)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Verification succeeded" in r.stdout + r.stderr, r.stderr


def test_every_bad_signature_is_refused_and_changes_nothing(setup: tuple[TwoVersions, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    v, _ = setup
    lock, lock2 = tmp_path / "models.lock", tmp_path / "other" / "models.lock"
    lock2.parent.mkdir()
    shutil.copy(v.lock1, lock)
    shutil.copy(v.lock2, lock2)
    priv, pub = keypair(tmp_path, "approver")
    _, stranger = keypair(tmp_path, "stranger")
    assert main(["sign", "--lock", str(lock), "--key", str(priv)]) == 0
    assert main(["sign", "--lock", str(lock2), "--key", str(priv)]) == 0
    sig = tmp_path / "models.lock.sig"
    good_sig = sig.read_bytes()
    base = ["validate", "--public-key", str(pub), "--lock", str(lock), "--dir", str(v.cache)]
    capsys.readouterr()

    before = state(tmp_path, v.cache)
    line = refused(capsys, ["validate", "--public-key", str(stranger), "--lock", str(lock), "--dir", str(v.cache)])
    assert "does not verify" in line and "stranger.pub.pem" in line and "Key mismatch" in line
    assert state(tmp_path, v.cache) == before

    sig.write_bytes(good_sig[: len(good_sig) // 2])  # truncated
    before = state(tmp_path, v.cache)
    assert "not a model-signing signature bundle" in refused(capsys, base)
    assert state(tmp_path, v.cache) == before

    shutil.copy(lock2.with_name("models.lock.sig"), sig)  # another lock's signature
    line = refused(capsys, base)
    assert "signs other bytes" in line and "another lock's signature" in line

    sig.write_bytes(good_sig)
    with lock.open("a") as f:  # tampered after signing
        f.write("# approved by nobody\n")
    line = refused(capsys, base)
    actual = "sha256:" + hashlib.sha256(lock.read_bytes()).hexdigest()
    assert "signs other bytes" in line and actual in line

    sig.unlink()
    assert "has no signature" in refused(capsys, base)


def test_two_keys_during_a_rotation_and_the_environment(setup: tuple[TwoVersions, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from smart_model_manager.ops.signing import sign_lock, verify_lock

    v, _ = setup
    lock = tmp_path / "models.lock"
    shutil.copy(v.lock1, lock)
    old_priv, old_pub = keypair(tmp_path, "old")
    new_priv, new_pub = keypair(tmp_path, "new")
    sign_lock(lock, old_priv)
    assert verify_lock(lock, [old_pub, new_pub]) == str(old_pub)  # during the rotation both are accepted
    sign_lock(lock, new_priv)
    assert verify_lock(lock, [old_pub, new_pub]) == str(new_pub)
    sign_lock(lock, old_priv)
    with pytest.raises(SignatureError, match="any accepted key"):
        verify_lock(lock, [new_pub])  # after it, the old key's signature is refused

    # in the init container the keys come from the environment; no flag needed
    monkeypatch.setenv("SMM_SIGNATURE_PUBLIC_KEYS", f"{new_pub}")
    assert "any accepted key" in refused(capsys, ["validate", "--lock", str(lock), "--dir", str(v.cache)])
    monkeypatch.setenv("SMM_SIGNATURE_PUBLIC_KEYS", f"{old_pub},{new_pub}")
    assert main(["validate", "--lock", str(lock), "--dir", str(v.cache)]) == 0


def test_signing_is_not_imported_by_the_package() -> None:
    r = subprocess.run([sys.executable, "-c", "import sys, smart_model_manager, smart_model_manager.cli.main; "
                        "print(sorted(m for m in sys.modules if m.startswith(('model_signing', 'sigstore', "
                        "'smart_model_manager.ops.signing', 'smart_model_manager.image'))))"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_load_model_in_production_refuses_a_lock_signed_by_another_key(setup: tuple[TwoVersions, Path],
                                                                      tmp_path: Path) -> None:
    from smart_model_manager.api import ModelManager
    from smart_model_manager.ops.signing import sign_lock
    from smart_model_manager.settings import Settings

    v, _ = setup
    lock = tmp_path / "models.lock"
    shutil.copy(v.lock1, lock)
    priv, _pub = keypair(tmp_path, "approver")
    _, stranger = keypair(tmp_path, "stranger")
    sign_lock(lock, priv)
    env = {"SMM_ENV": "production", "SMM_VOLUME_DIR": str(v.cache), "SMM_LOCK": str(lock),
           "SMM_SIGNATURE_PUBLIC_KEYS": str(stranger)}
    mm = ModelManager(settings=Settings.from_env(env))
    before = state(tmp_path, v.cache)
    with pytest.raises(SignatureError, match="any accepted key"):
        mm.load_model("news")
    assert mm._lock_obj is None  # nothing was taken from the lock, nothing loaded
    assert state(tmp_path, v.cache) == before
    env["SMM_SIGNATURE_PUBLIC_KEYS"] = str(_pub)
    assert ModelManager(settings=Settings.from_env(env))._lock().digest is not None


def test_smm_lock_sign_writes_a_verifiable_signature(setup: tuple[TwoVersions, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from smart_model_manager.mirror import MirrorServer
    from smart_model_manager.ops.signing import verify_lock

    try:
        from ._image_fixtures import SPEC
    except ImportError:
        from _image_fixtures import SPEC
    _v, tmp = setup
    priv, pub = keypair(tmp_path, "approver")
    spec, lock = tmp_path / "models.yaml", tmp_path / "models.lock"
    spec.write_text(SPEC)
    with MirrorServer(tmp / "upstream") as mirror:
        assert main(["lock", "--spec", str(spec), "--lock", str(lock), "--endpoint", mirror.url,
                     "--sign", str(priv)]) == 0
        assert main(["lock", "--check", "--spec", str(spec), "--lock", str(lock), "--endpoint", mirror.url,
                     "--sign", str(priv)]) == 2  # --check writes nothing, so it signs nothing
    assert "signed" in capsys.readouterr().err
    assert verify_lock(lock, [pub]) == str(pub)
