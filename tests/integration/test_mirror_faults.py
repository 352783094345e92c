"""Injected failure modes, seen through the REAL huggingface_hub client: resume with Range, 5xx, stalls."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from smart_model_manager.mirror import Fault, MirrorServer
from smart_model_manager.store.cache import import_folder

try:
    from ._mirror_fixtures import raw_request
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from _mirror_fixtures import raw_request

pytestmark = pytest.mark.integration
SIZE = 24 << 20  # > the client's 10 MiB write chunk, so a drop after 15 MiB leaves bytes to resume from


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("faults")
    (base / "src").mkdir()
    data = os.urandom(SIZE)
    (base / "src" / "model.safetensors").write_bytes(data)
    (base / "src" / "config.json").write_text("{}")
    import_folder(base / "src", base / "root", "org/big")
    with MirrorServer(base / "root") as server:
        yield server, hashlib.sha256(data).hexdigest()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return huggingface_hub


def test_client_resumes_with_range_after_a_drop(hub, big, tmp_path: Path) -> None:
    server, digest = big
    server.stats.reset()
    server.inject(Fault("drops_mid_file", "org/big/model.safetensors", after_bytes=15 << 20))
    got = hub.hf_hub_download("org/big", "model.safetensors", endpoint=server.url, cache_dir=tmp_path, token=False)
    assert hashlib.sha256(Path(got).read_bytes()).hexdigest() == digest
    assert server.faults.triggered == [("drops_mid_file", "org/big/model.safetensors")]
    stats = server.stats["org/big/model.safetensors"]
    # one cut GET, then a Range GET for the rest: the bytes already received were not sent again in full
    assert stats.full_gets == 1 and stats.range_gets == 1
    assert SIZE <= stats.bytes_served < 2 * SIZE


def test_server_error_on_download_surfaces_as_hf_http_error(hub, big, tmp_path: Path) -> None:
    from huggingface_hub.errors import HfHubHTTPError

    server, _digest = big
    server.inject(Fault("server_error", "org/big/config.json", status=503))
    with pytest.raises(HfHubHTTPError) as info:
        hub.hf_hub_download("org/big", "config.json", endpoint=server.url, cache_dir=tmp_path, token=False)
    assert info.value.response.status_code == 503
    # the fault is spent: the next attempt works
    got = hub.hf_hub_download("org/big", "config.json", endpoint=server.url, cache_dir=tmp_path, token=False)
    assert Path(got).read_text() == "{}"


def test_stall_delays_the_body_and_head_is_never_faulted(big) -> None:
    server, _digest = big
    server.inject(Fault("stalls", "org/big/config.json", seconds=1.0))
    t0 = time.monotonic()
    assert raw_request(server.url, b"/org/big/resolve/main/config.json", b"HEAD")[0] == 200
    assert time.monotonic() - t0 < 0.8
    t0 = time.monotonic()
    status, _h, body = raw_request(server.url, b"/org/big/resolve/main/config.json")
    assert status == 200 and body == b"{}" and time.monotonic() - t0 >= 1.0


def test_fault_validation_and_clear(big) -> None:
    server, _digest = big
    with pytest.raises(ValueError, match="unknown fault mode"):
        Fault("explodes")
    with pytest.raises(ValueError, match="times"):
        Fault("stalls", times=0)
    server.inject(Fault("server_error", "*", times=5))
    server.faults.clear()
    assert raw_request(server.url, b"/org/big/resolve/main/config.json")[0] == 200
