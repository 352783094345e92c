"""Adding a source is additive: one new class (here, test-only) and one registration in the chain table.

``LocalDirRemote`` treats a plain folder ``<remote>/<org>/<name>/...`` as a remote. It downloads through
``store.fetch.fetch_into`` with a ``Downloader`` (here the fake next to the contract, ``remote.fake``), so it
gets staging, verification and the HF-cache layout for free. Nothing in api.py, ops/pull.py or ops/lock.py knows about it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smart_model_manager.api import ModelManager
from smart_model_manager.errors import IntegrityError, ModelNotFoundError, Unavailable
from smart_model_manager.remote.fake import FakeRemote
from smart_model_manager.settings import Settings
from smart_model_manager.sources import chains
from smart_model_manager.sources.base import Request, Resolved, Verified, read_schema
from smart_model_manager.store import cache as store
from smart_model_manager.store.fetch import Want, fetch_into
from smart_model_manager.store.hashing import content_commit

pytestmark = pytest.mark.unit
REPO = "org/local-fin"
DOWNLOADERS: dict[Path, FakeRemote] = {}  # one per remote folder, so a test can tamper with what it serves


class LocalDirRemote:
    """A source: the folder is the remote, the local cache is where verified copies are published."""

    name = "localdir"

    def __init__(self, settings: Settings, remote: Path):
        self.root = Path(settings.cache_dir)
        self.remote = remote
        self.downloader = DOWNLOADERS.setdefault(remote, FakeRemote.from_folder(remote))

    def resolve(self, request: Request) -> Resolved:
        folder = self.remote / request.repo_id
        if not folder.is_dir():
            raise Unavailable(f"{request.repo_id} is not under {self.remote}")
        listed = store.hash_folder(folder)  # what the remote says the files are
        commit = content_commit((rel, size, sha) for rel, (size, sha) in listed.items())
        wants = {rel: Want(size, sha) for rel, (size, sha) in listed.items()}
        result = fetch_into(self.root, self.downloader, request.repo_id, commit, wants, revision="main")
        labels, dim = read_schema(result.snapshot)
        return Resolved(repo_id=request.repo_id, source=self.name, path=result.snapshot, commit=commit,
                        revision=request.revision, labels=labels, dimension=dim, verified=Verified.FULL)


@pytest.fixture()
def remote(tmp_path: Path) -> Path:
    folder = tmp_path / "remote" / REPO
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"id2label": {"0": "down", "1": "up"}}))
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    return tmp_path / "remote"


@pytest.fixture()
def registered(monkeypatch: pytest.MonkeyPatch, remote: Path) -> list[LocalDirRemote]:
    """Register the source in the dev chain instead of the Hub (restored after the test)."""
    built: list[LocalDirRemote] = []

    def factory(settings: Settings) -> LocalDirRemote:
        built.append(LocalDirRemote(settings, remote))
        return built[-1]

    monkeypatch.setitem(chains.CHAINS, "dev", (chains.cache_source,))
    chains.register_source("dev", factory)
    return built


def test_a_registered_source_serves_through_the_normal_chain(registered, tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path / "cache")
    manager = ModelManager("dev", settings=settings)
    assert manager.sources == ["cache", "localdir"]
    first = manager.resolve(REPO)
    assert first.source == "localdir" and first.verified == "full" and first.labels == ("down", "up")
    assert (first.path / "model.safetensors").read_bytes() == b"weights" * 100
    assert store.find_snapshot(settings.cache_dir, REPO) == first.path  # published into the cache layout
    # the next manager finds it in the cache: the new source filled it like the Hub source would
    again = ModelManager("dev", settings=settings).resolve(REPO)
    assert again.source == "cache" and again.commit == first.commit


def test_a_registered_source_that_has_nothing_falls_through_with_its_reason(registered, tmp_path: Path) -> None:
    manager = ModelManager("dev", settings=Settings(cache_dir=tmp_path / "cache"))
    with pytest.raises(ModelNotFoundError) as exc:
        manager.resolve("org/ghost")
    assert ("localdir", f"org/ghost is not under {tmp_path / 'remote'}") in exc.value.attempts


def test_bytes_that_change_in_flight_are_never_published(registered, remote: Path, tmp_path: Path) -> None:
    DOWNLOADERS.setdefault(remote, FakeRemote.from_folder(remote)).serve_instead(REPO, "model.safetensors",
                                                                                 b"evil" * 175)
    cache = tmp_path / "cache"
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        ModelManager("dev", settings=Settings(cache_dir=cache)).resolve(REPO)
    # IntegrityError, not ModelNotFoundError: the mismatch stopped the chain; nothing was published
    assert store.find_snapshot(cache, REPO) is None


def test_docs_design_states_the_count_this_test_proves() -> None:
    design = Path(__file__).resolve().parents[2] / "docs" / "design.md"
    assert '**A source** (an S3 bucket, a plain-HTTP server): **2 files**' in design.read_text()
