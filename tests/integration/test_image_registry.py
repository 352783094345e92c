"""`smm image push/pull` against a REAL registry: Debian's CNCF distribution `docker-registry` on
127.0.0.1 with storage in a temp folder (htpasswd/bcrypt for the auth cases), and skopeo for interop."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from smart_model_manager.cli.main import main
from smart_model_manager.errors import IntegrityError
from smart_model_manager.formats import lockfile
from smart_model_manager.image.build import build_image
from smart_model_manager.image.layout import read_image
from smart_model_manager.image.registry import RegistryClient, RegistryError, parse_reference
from smart_model_manager.image.transfer import pull, push

try:
    from ._image_fixtures import REGISTRY_BIN, TwoVersions, free_port, registry, stop, two_versions
    from .test_image_build import unpack
except ImportError:
    from _image_fixtures import REGISTRY_BIN, TwoVersions, free_port, registry, stop, two_versions
    from test_image_build import unpack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240),
              pytest.mark.skipif(not Path(REGISTRY_BIN).exists(), reason="docker-registry is not installed "
                                 "(apt-get install docker-registry)")]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[TwoVersions, Path, Path]:
    tmp = tmp_path_factory.mktemp("image-reg")
    v = two_versions(tmp)
    build_image(lockfile.load(v.lock1), v.cache, tmp / "img-v1", tag="v1")
    build_image(lockfile.load(v.lock2), v.cache, tmp / "img-v2", tag="v2")
    return v, tmp / "img-v1", tmp / "img-v2"


def client(host: str, **kw: object) -> RegistryClient:
    return RegistryClient(host, plain_http=True, timeout=10, **kw)  # type: ignore[arg-type]


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1].startswith("(set SMM_DEBUG=1"), err
    return err[0]


def test_push_keeps_the_digest_and_v2_moves_only_changed_layers(images: tuple[TwoVersions, Path, Path],
                                                               tmp_path: Path) -> None:
    v, v1, v2 = images
    with registry(tmp_path / "reg") as reg:
        c = client(reg.host)
        r1 = push(v1, parse_reference(f"{reg.host}/team/models:v1"), c)
        assert r1.digest == read_image(v1).manifest_digest and r1.blobs_skipped == 0
        r2 = push(v2, parse_reference(f"{reg.host}/team/models:v2"), c)
        assert r2.blobs_skipped == 1  # the small-files layer; the config names the lock, so it differs
        # the registry serves the manifest under the digest we built (the pin in the pod spec)
        with urllib.request.urlopen(urllib.request.Request(  # noqa: S310 - 127.0.0.1
                f"{reg.url}/v2/team/models/manifests/v1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})) as resp:
            assert resp.headers["Docker-Content-Digest"] == r1.digest
            assert resp.read() == read_image(v1).manifest_bytes
        # a node that has v1 pulls only the changed layers of v2
        dest = tmp_path / "node"
        p1 = pull(parse_reference(f"{reg.host}/team/models@{r1.digest}"), dest, c)
        assert p1.bytes_reused == 0 and p1.digest == r1.digest
        p2 = pull(parse_reference(f"{reg.host}/team/models:v2"), dest, c)
        new_layers = {la["digest"]: la["size"] for la in read_image(v2).layers}
        old_layers = {la["digest"] for la in read_image(v1).layers}
        changed = sum(s for d, s in new_layers.items() if d not in old_layers)
        assert p2.digest == r2.digest and p2.bytes_downloaded == changed + read_image(v2).manifest["config"]["size"]
        assert p2.bytes_reused == sum(s for d, s in new_layers.items() if d in old_layers)
        print(f"v2 after v1: downloaded {p2.bytes_downloaded} bytes, reused {p2.bytes_reused}")
        report = __import__("smart_model_manager.ops.validate", fromlist=["validate"]).validate(
            unpack(dest, tmp_path / "rootfs"), lock=lockfile.load(v.lock2), mode="full", require_manifest=True)
        assert report.ok, report.errors


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_skopeo_reads_what_we_push(images: tuple[TwoVersions, Path, Path], tmp_path: Path) -> None:
    _v, v1, _v2 = images
    with registry(tmp_path / "reg") as reg:
        pushed = push(v1, parse_reference(f"{reg.host}/team/models:v1"), client(reg.host))
        out = tmp_path / "skopeo-oci"
        r = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--preserve-digests",
                            f"docker://{reg.host}/team/models@{pushed.digest}", f"oci:{out}:v1"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert read_image(out, "v1").manifest_digest == pushed.digest
        r = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{reg.host}/team/models:v1"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["Digest"] == pushed.digest and info["Labels"]["dev.smart-model-manager.lock.digest"]


def test_basic_auth_from_env_and_from_an_auth_file(images: tuple[TwoVersions, Path, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _v, v1, _v2 = images
    with registry(tmp_path / "reg", users={"ci": "s3cret"}) as reg:
        ref = f"{reg.host}/team/models:v1"
        assert main(["image", "push", str(v1), ref, "--plain-http"]) == 1
        line = one_line(capsys)
        assert "401" in line and "SMM_REGISTRY_USERNAME" in line
        monkeypatch.setenv("SMM_REGISTRY_USERNAME", "ci")
        monkeypatch.setenv("SMM_REGISTRY_PASSWORD", "wrong")
        assert main(["image", "push", str(v1), ref, "--plain-http"]) == 1
        assert "401" in one_line(capsys)
        monkeypatch.setenv("SMM_REGISTRY_PASSWORD", "s3cret")
        assert main(["image", "push", str(v1), ref, "--plain-http", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["digest"] == read_image(v1).manifest_digest
        monkeypatch.delenv("SMM_REGISTRY_USERNAME")
        monkeypatch.delenv("SMM_REGISTRY_PASSWORD")
        import base64

        auth = tmp_path / "config.json"
        auth.write_text(json.dumps({"auths": {reg.host: {"auth": base64.b64encode(b"ci:s3cret").decode()}}}))
        monkeypatch.setenv("SMM_REGISTRY_AUTH_FILE", str(auth))
        assert main(["image", "pull", ref, str(tmp_path / "pulled"), "--plain-http"]) == 0
        assert read_image(tmp_path / "pulled").manifest_digest == read_image(v1).manifest_digest


def test_registry_down_and_404_are_one_line_and_write_nothing(images: tuple[TwoVersions, Path, Path],
                                                            tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _v, v1, _v2 = images
    port = free_port()
    assert main(["image", "push", str(v1), f"127.0.0.1:{port}/team/models:v1", "--plain-http"]) == 1
    assert "unreachable" in one_line(capsys)
    dest = tmp_path / "dest"
    shutil.copytree(v1, dest)
    before = sorted(p.relative_to(dest) for p in dest.rglob("*"))
    with registry(tmp_path / "reg") as reg:
        assert main(["image", "pull", f"{reg.host}/team/models:nope", str(dest), "--plain-http"]) == 1
        assert "404" in one_line(capsys)
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_push_interrupted_by_a_dying_registry_completes_on_rerun(images: tuple[TwoVersions, Path, Path],
                                                                   tmp_path: Path) -> None:
    _v, v1, _v2 = images
    port = free_port()
    ref = parse_reference(f"127.0.0.1:{port}/team/models:v1")
    with registry(tmp_path / "reg", port=port) as reg:
        calls = []

        def die_after_first(digest: str) -> None:
            calls.append(digest)
            if len(calls) == 2:  # the config and one layer are up; the registry goes away
                stop(reg)

        with pytest.raises(RegistryError, match="unreachable"):
            push(v1, ref, client(reg.host), on_blob=die_after_first)
    with registry(tmp_path / "reg", port=port) as reg:  # same storage: the uploaded blobs survived
        with pytest.raises(Exception, match="404"):
            client(reg.host).get_manifest("team/models", "v1", "application/vnd.oci.image.manifest.v1+json")
        again = push(v1, ref, client(reg.host))
        assert again.blobs_skipped == 2 and again.blobs_uploaded == len(read_image(v1).blobs) - 2
        assert again.digest == read_image(v1).manifest_digest


def test_a_tampered_blob_in_the_registry_is_refused_on_pull(images: tuple[TwoVersions, Path, Path],
                                                             tmp_path: Path) -> None:
    _v, v1, _v2 = images
    with registry(tmp_path / "reg") as reg:
        pushed = push(v1, parse_reference(f"{reg.host}/team/models:v1"), client(reg.host))
        weights = read_image(v1).layers[0]["digest"][7:]
        data_file = reg.storage / "docker/registry/v2/blobs/sha256" / weights[:2] / weights / "data"
        raw = bytearray(data_file.read_bytes())
        raw[5000] ^= 1
        data_file.write_bytes(bytes(raw))
        with pytest.raises(IntegrityError, match=weights):
            pull(parse_reference(f"{reg.host}/team/models@{pushed.digest}"), tmp_path / "dest", client(reg.host))
        assert not (tmp_path / "dest").exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_registry_that_never_answers_is_one_line_after_the_timeout(images: tuple[TwoVersions, Path, Path],
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    try:
        from ._artifacts_fixtures import silent_listener
    except ImportError:
        from _artifacts_fixtures import silent_listener
    _v, v1, _v2 = images
    monkeypatch.setenv("SMM_TIMEOUT", "1")
    with silent_listener() as url:
        host = url.removeprefix("http://")
        assert main(["image", "push", str(v1), f"{host}/team/models:v1", "--plain-http"]) == 1
    line = one_line(capsys)
    assert "did not answer" in line and "SMM_TIMEOUT" in line


@pytest.mark.parametrize(("status", "words"), [(403, "may not do this"), (500, "answered 500"),
                                               (503, "answered 503")])
def test_403_and_5xx_are_one_line_naming_the_status(images: tuple[TwoVersions, Path, Path], status: int,
                                                    words: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A front proxy that refuses (403) or fails (5xx) every request: the fault, not a registry fake."""
    import http.server
    import threading

    class Refuse(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = json.dumps({"errors": [{"code": "DENIED" if status == 403 else "UNAVAILABLE",
                                           "message": "injected"}]}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    _v, v1, _v2 = images
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        assert main(["image", "push", str(v1), f"{host}/team/models:v1", "--plain-http"]) == 1
        line = one_line(capsys)
        assert words in line and str(status) in line, line
    finally:
        server.shutdown()
        server.server_close()
