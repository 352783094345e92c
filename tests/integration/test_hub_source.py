"""Download on demand (HubSource) against a real mirror on 127.0.0.1: verified publish, tampering,
timeouts, refused connections, dropped connections, offline, and the lock wired into resolution."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import pytest

from smart_model_manager import ModelManager, Settings
from smart_model_manager.errors import IntegrityError, ModelNotFoundError, SourceError
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import Fault, MirrorServer
from smart_model_manager.ops.lock import resolve_lock
from smart_model_manager.remote.hub import HubClient
from smart_model_manager.sources.base import Request, Resolved, Unavailable
from smart_model_manager.sources.cache import CacheSource
from smart_model_manager.sources.hub import HubSource
from smart_model_manager.sources.resolver import resolve_chain

try:
    from ._artifacts_fixtures import closed_port, hub_like_root, make_sentiment_folder, silent_listener
except ImportError:
    from _artifacts_fixtures import closed_port, hub_like_root, make_sentiment_folder, silent_listener

pytestmark = pytest.mark.integration

REPO = "org/fin"
SPEC = "models:\n  fin:\n    repo_id: org/fin\n    model_type: sentiment\n"


@pytest.fixture
def upstream(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "upstream"
    src = make_sentiment_folder(tmp_path / "src", weights=600_000)
    commit = hub_like_root(src, root, REPO)
    with MirrorServer(root) as mirror:
        lock = resolve_lock(load_spec(SPEC, "models.yaml"), mirror.url, timeout=10, retries=0)
        yield mirror, root, src, commit, lock


def settings_for(url: str, cache: Path, **extra: str) -> Settings:
    env = {"HF_ENDPOINT": url, "MODEL_CACHE_DIR": str(cache), "SMM_TIMEOUT": "5", "SMM_RETRIES": "1"}
    env.update(extra)
    return Settings.from_env(env)


class Recorder:
    """A source after the hub that must never be reached when the hub fails fatally."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls = 0

    def resolve(self, request: Request) -> Resolved:
        self.calls += 1
        raise Unavailable("recorder has nothing")


def test_pinned_download_is_verified_then_served_from_the_cache(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commit, lock = upstream
    cache = tmp_path / "cache"
    settings = settings_for(mirror.url, cache)
    resolved = ModelManager("dev", settings=settings, lock=lock).resolve("fin")
    assert resolved.source == "hub" and resolved.commit == commit and resolved.verified == "full"
    assert resolved.labels == ("negative", "neutral", "positive")
    assert resolved.path == cache / "models--org--fin" / "snapshots" / commit
    for rel in lock.models["fin"].files:
        assert (resolved.path / rel).read_bytes() == (src / rel).read_bytes()
    assert not (resolved.path / "tf_model.h5").exists()  # not in the lock
    assert (cache / "models--org--fin" / "refs" / "main").read_text() == commit
    assert not (cache / ".staging").exists()
    gets = {k: v.full_gets for k, v in mirror.stats.files().items()}
    # a second manager (a new process, say) finds it in the cache and downloads nothing
    again = ModelManager("dev", settings=settings, lock=lock).resolve("fin")
    assert again.source == "cache" and again.path == resolved.path
    assert {k: v.full_gets for k, v in mirror.stats.files().items()} == gets


def test_tampered_mirror_raises_integrity_error_and_publishes_nothing(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, root, src, commit, lock = upstream
    expected = lock.models["fin"].files["model.safetensors"].sha256
    blob = root / "models--org--fin" / "blobs" / expected.removeprefix("sha256:")
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0xFF  # same size, one flipped byte: only a hash can tell
    blob.write_bytes(bytes(data))
    actual = "sha256:" + hashlib.sha256(bytes(data)).hexdigest()
    cache = tmp_path / "cache"
    settings = settings_for(mirror.url, cache)
    recorder = Recorder()
    sources = [CacheSource(cache), HubSource(settings), recorder]
    request = Request("fin", REPO, None, "sentiment", pinned=lock.models["fin"])
    with pytest.raises(IntegrityError) as exc:
        resolve_chain(sources, request, "dev")
    msg = str(exc.value)
    assert "model.safetensors" in msg and expected in msg and actual in msg
    assert exc.value.expected == expected and exc.value.actual == actual
    assert recorder.calls == 0  # never falls through
    rdir = cache / "models--org--fin"
    assert not (rdir / "snapshots").exists()
    assert not (rdir / "blobs").exists() or list((rdir / "blobs").iterdir()) == []
    assert mirror.stats["org/fin/model.safetensors"].full_gets == 1  # and no silent re-download


def test_without_a_lock_files_are_published_unverified_and_logged(upstream, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commit, _lock = upstream
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger="smart_model_manager.store.fetch"):
        resolved = ModelManager("dev", settings=settings_for(mirror.url, cache), lock=False).resolve(REPO)
    assert resolved.source == "hub" and resolved.commit == commit
    assert resolved.verified == "lfs-only"  # the weights matched the sha256 the endpoint lists
    assert (resolved.path / "vocab.txt").read_bytes() == (src / "vocab.txt").read_bytes()
    assert "WITHOUT a pinned sha256" in caplog.text and "vocab.txt" in caplog.text


def test_dropped_connection_resumes_with_range(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commit, lock = upstream
    mirror.stats.reset()
    mirror.inject(Fault("drops_mid_file", "org/fin/model.safetensors", after_bytes=250_000))
    resolved = HubSource(settings_for(mirror.url, tmp_path / "cache")).resolve(
        Request("fin", REPO, None, "sentiment", pinned=lock.models["fin"]))
    stats = mirror.stats["org/fin/model.safetensors"]
    assert stats.full_gets == 1 and stats.range_gets == 1  # resumed, not restarted
    assert stats.bytes_served == (src / "model.safetensors").stat().st_size  # every byte sent once
    assert (resolved.path / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()


def test_a_stall_mid_download_times_out_and_is_retried(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commit, lock = upstream
    mirror.inject(Fault("stalls", "org/fin/model.safetensors", seconds=3))
    client = HubClient(mirror.url, timeout=0.5, retries=1, backoff=0.05)
    t0 = time.monotonic()
    size, sha = client.download(REPO, commit, "model.safetensors", tmp_path / "f")
    assert time.monotonic() - t0 < 2.5  # did not sit out the 3 s stall
    assert "sha256:" + sha == lock.models["fin"].files["model.safetensors"].sha256


def test_silent_server_fails_in_bounded_time(tmp_path: Path) -> None:
    with silent_listener() as url:
        client = HubClient(url, timeout=0.5, retries=1, backoff=0.1)
        t0 = time.monotonic()
        with pytest.raises(SourceError, match=r"no answer from .* within 0.5s.*gave up after 2 attempt"):
            client.revision(REPO, "main")
        assert time.monotonic() - t0 < 5
        t0 = time.monotonic()
        with pytest.raises(SourceError):
            client.download(REPO, "0" * 40, "config.json", tmp_path / "f")
        assert time.monotonic() - t0 < 5


def test_closed_port_is_a_source_error_and_the_chain_moves_on(tmp_path: Path) -> None:
    url = closed_port()
    settings = settings_for(url, tmp_path / "cache", SMM_TIMEOUT="2", SMM_RETRIES="0")
    recorder = Recorder()
    with pytest.raises(ModelNotFoundError) as exc:
        resolve_chain([CacheSource(tmp_path / "cache"), HubSource(settings), recorder],
                      Request(REPO, REPO, None, "sentiment"), "dev")
    reasons = dict(exc.value.attempts)
    assert "cannot reach" in reasons["hub"] and url in reasons["hub"]
    assert recorder.calls == 1  # transient: the next source was tried


def test_missing_repo_and_offline_are_unavailable_with_a_reason(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, *_ = upstream
    mirror.stats.reset()  # forget what the lock fixture fetched
    hub = HubSource(settings_for(mirror.url, tmp_path / "cache"))
    with pytest.raises(Unavailable, match="org/ghost@main: repository not found"):
        hub.resolve(Request("org/ghost", "org/ghost", None, "sentiment"))
    with pytest.raises(Unavailable, match="revision not found"):
        hub.resolve(Request(REPO, REPO, "v9", "sentiment"))
    offline = HubSource(settings_for(mirror.url, tmp_path / "cache", HF_HUB_OFFLINE="1"))
    with pytest.raises(Unavailable, match="offline"):
        offline.resolve(Request(REPO, REPO, None, "sentiment"))
    assert mirror.stats.files() == {}


@pytest.mark.parametrize("retries, ok", [(3, True), (1, False)])
def test_server_errors_are_retried_a_bounded_number_of_times(upstream, tmp_path: Path,
                                                             retries: int, ok: bool) -> None:  # type: ignore[no-untyped-def]
    mirror, _root, src, commit, lock = upstream
    mirror.inject(Fault("server_error", "org/fin/model.safetensors", status=503, times=2))
    client = HubClient(mirror.url, timeout=5, retries=retries, backoff=0.05)
    dest = tmp_path / "weights"
    if ok:
        size, sha = client.download(REPO, commit, "model.safetensors", dest)
        assert "sha256:" + sha == lock.models["fin"].files["model.safetensors"].sha256
    else:
        with pytest.raises(SourceError, match=r"HTTP 503 .*gave up after 2 attempt"):
            client.download(REPO, commit, "model.safetensors", dest)


def test_an_endpoint_sending_more_than_pinned_is_cut_off(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, root, src, commit, lock = upstream
    pinned = lock.models["fin"].files["model.safetensors"]
    blob = root / "models--org--fin" / "blobs" / pinned.sha256.removeprefix("sha256:")
    blob.write_bytes(blob.read_bytes() + b"\0" * 5_000_000)  # a much bigger file behind the same name
    client = HubClient(mirror.url, timeout=5, retries=0)
    with pytest.raises(IntegrityError, match=rf"sent more than the pinned {pinned.size} bytes"):
        client.download(REPO, commit, "model.safetensors", tmp_path / "f", size=pinned.size)
    assert (tmp_path / "f").stat().st_size <= pinned.size


def test_a_local_write_error_is_not_retried_nor_called_a_network_error(upstream, tmp_path: Path,
                                                                      monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno as errno_mod

    mirror, _root, _src, commit, _lock = upstream
    mirror.stats.reset()

    class FullDisk:
        """A file object whose writes fail like a full disk."""

        def __init__(self, *a, **k):  # type: ignore[no-untyped-def]
            pass

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            return False

        def write(self, data: bytes) -> int:
            raise OSError(errno_mod.ENOSPC, "No space left on device")

    import smart_model_manager.remote.hub as hub_client_mod

    monkeypatch.setattr(hub_client_mod, "open", FullDisk, raising=False)
    client = HubClient(mirror.url, timeout=5, retries=3, backoff=0.05)
    with pytest.raises(OSError) as exc:
        client.download(REPO, commit, "model.safetensors", tmp_path / "f")
    assert exc.value.errno == errno_mod.ENOSPC and not isinstance(exc.value, SourceError)
    assert mirror.stats["org/fin/model.safetensors"].full_gets == 1  # not retried


def test_pinned_commit_and_other_revisions(upstream, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mirror, root, src, commit, lock = upstream
    cache = tmp_path / "cache"
    settings = settings_for(mirror.url, cache)
    # asking for the locked commit explicitly is the pinned path (verified)
    pinned = ModelManager("dev", settings=settings, lock=lock).resolve("fin", revision=commit)
    assert pinned.source == "hub" and pinned.commit == commit and pinned.verified == "full"
    # a newer upstream commit, asked for by its own id, is not the pinned one: downloaded, not fully verified
    (src / "vocab.txt").write_text("[PAD]\n[UNK]\nether\n")
    newer = hub_like_root(src, root, REPO, revision="dev")
    other = ModelManager("dev", settings=settings, lock=lock).resolve("fin", revision=newer)
    assert other.commit == newer and other.verified != "full"
    assert (other.path / "vocab.txt").read_text().endswith("ether\n")
    # the pinned snapshot is untouched, and the cache now holds both
    assert (pinned.path / "vocab.txt").read_text().endswith("bitcoin\n")
