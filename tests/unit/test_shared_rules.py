"""Rules that had several copies now have one home, and every caller goes through it: finding the lock
(Settings.find_lock_path), the environment names (settings.TEST ... HUB), and the chain of sources that
real-model tests may use without a download (sources.chains.on_disk_chain)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import smart_model_manager
from smart_model_manager.api import ModelManager
from smart_model_manager.cli.doctor import report
from smart_model_manager.cli.validate import _which_lock
from smart_model_manager.formats import lockfile
from smart_model_manager.settings import ENVIRONMENTS, PRODUCTION, TEST, Settings
from smart_model_manager.sources.chains import build_chain, on_disk_chain

pytestmark = pytest.mark.unit
SRC = Path(smart_model_manager.__file__).parent


def _every_caller(settings: Settings) -> dict[str, object]:
    manager = ModelManager(TEST, settings=settings)
    found = lockfile.find_lock(settings)
    return {"rule": settings.find_lock_path()[0],
            "lockfile.find_lock": found.path if found is not None else None,
            "ModelManager": manager._lock().path if manager._lock() is not None else None,
            "smm validate": _which_lock(None, False, settings)[0],
            "smm env": report(settings)["lock"]}


def test_every_caller_finds_the_same_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    none = _every_caller(Settings(cache_dir=tmp_path / "cache"))
    assert set(none.values()) == {None}
    lockfile.write_lock(tmp_path / "models.lock", lockfile.Lock(models={}))
    here = _every_caller(Settings(cache_dir=tmp_path / "cache"))
    assert {str(v) for v in here.values()} == {"models.lock"}, here
    other = tmp_path / "elsewhere.lock"
    lockfile.write_lock(other, lockfile.Lock(models={}))
    pinned = _every_caller(Settings(cache_dir=tmp_path / "cache", lock_path=other))
    assert {str(v) for v in pinned.values()} == {str(other)}, pinned  # SMM_LOCK wins over ./models.lock
    assert "from SMM_LOCK" in _which_lock(None, False, Settings(lock_path=other))[1]


def test_a_missing_smm_lock_is_refused_not_ignored(tmp_path: Path) -> None:
    from smart_model_manager.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="does not exist"):
        lockfile.find_lock(Settings(lock_path=tmp_path / "gone.lock"))


def test_no_environment_is_compared_with_a_string_literal() -> None:
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            literal = [s for s in sides if isinstance(s, ast.Constant) and s.value in ENVIRONMENTS]
            named = any("env" in ast.unparse(s).lower() for s in sides)
            assert not (literal and named), f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_on_disk_chain_is_the_environments_chain_without_downloads(env: str, tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path / "cache", volume_dir=tmp_path / "vol")
    names = [s.name for s in on_disk_chain(env, settings)]
    full = [s.name for s in build_chain(env, settings)]
    assert "hub" not in names and names[-1] == "volume"
    assert names[:-1] == [n for n in full if n not in ("hub", "volume")]
    if env == PRODUCTION:
        assert names == ["volume"]
    with pytest.raises(smart_model_manager.errors.ConfigurationError, match="valid values"):
        on_disk_chain("staging", settings)


def test_the_digest_prefix_is_spelled_only_in_store() -> None:
    """``"sha256:"`` is ``store.hashing.PREFIX``; everyone else uses with_prefix/strip_prefix/PREFIX."""
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).parts[0] == "store":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            bare = isinstance(node, ast.Constant) and node.value == "sha256:"
            lfs_pointer = isinstance(node, ast.JoinedStr) and "git-lfs.github.com/spec" in ast.unparse(node)
            glued = isinstance(node, ast.JoinedStr) and not lfs_pointer and any(  # the LFS pointer is its own format
                isinstance(a, ast.Constant) and str(a.value).endswith("sha256:") and isinstance(b, ast.FormattedValue)
                for a, b in zip(node.values, node.values[1:]))
            assert not (bare or glued), f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}"


def test_a_commit_is_decided_by_is_commit_not_by_length() -> None:
    from smart_model_manager.sources.base import Request

    def wants(revision: str) -> str | None:
        return Request(name="org/m", repo_id="org/m", revision=revision, model_type="sentiment").want_commit

    assert wants("a" * 40) == "a" * 40
    assert wants("release-candidate-branch-for-q3-2026-xx") is None  # 40 characters, not a commit
    assert wants("A" * 40) is None and wants("a" * 39) is None


def test_an_uppercase_commit_in_models_yaml_is_named_as_such(tmp_path: Path) -> None:
    from smart_model_manager.errors import LockfileError
    from smart_model_manager.formats import spec

    path = tmp_path / "models.yaml"
    path.write_text(f"models:\n  m:\n    repo_id: org/m\n    revision: '{'AB' * 20}'\n    model_type: sentiment\n")
    with pytest.raises(LockfileError, match="commit ids are lowercase hex"):
        spec.load(path)


def test_every_lock_against_manifest_check_uses_pin_differences(tmp_path: Path) -> None:
    """validate reports, the volume source refuses, pull refuses to overwrite: one comparison under all three."""
    from smart_model_manager.errors import IntegrityError, Unavailable
    from smart_model_manager.formats import pins
    from smart_model_manager.formats.manifest import FileEntry, Manifest, ModelEntry
    from smart_model_manager.formats.pins import pin_differences
    from smart_model_manager.sources.volume import VolumeSource

    a, b, c = FileEntry(3, "sha256:" + "a" * 64), FileEntry(3, "sha256:" + "b" * 64), FileEntry(5, "sha256:" + "c" * 64)
    recorded = ModelEntry("org/m", "1" * 40, "sentiment", {"config.json": a, "w.bin": a, "extra.bin": a})
    pinned = {"config.json": a, "w.bin": b, "new.bin": c}
    diffs = pin_differences(pinned, recorded.files)
    assert [(d.path, d.recorded) for d in diffs] == [("new.bin", None), ("w.bin", a)]
    # pull: a pinned file recorded otherwise is a conflict; one not recorded yet is not
    wanted = ModelEntry("org/m", "1" * 40, "sentiment", pinned)
    assert pins.conflicts(Manifest.of([recorded]), wanted) == [("w.bin", a, b)]
    # the volume source: the first difference by path decides, a missing file first
    source = VolumeSource(tmp_path)
    with pytest.raises(Unavailable, match="new.bin is pinned by models.lock but was never provisioned"):
        source._check_pins(recorded, pinned)
    with pytest.raises(IntegrityError, match="w.bin is recorded on the volume as 3 bytes"):
        source._check_pins(recorded, {"w.bin": b})
    source._check_pins(recorded, {"config.json": a})  # agreeing pins pass


def test_the_route_scores_polarity_with_the_one_signed_score() -> None:
    """The service result, smm analyze's aggregates and the per-symbol scores all use polarity.signed_score;
    a label without a polarity is refused when the route is built, never counted as 0."""
    from types import SimpleNamespace

    from smart_model_manager import polarity
    from smart_model_manager.service.multi import Route
    from smart_model_manager.service.symbols import signed_score

    labels, probs = ("Bearish", "Bullish", "Neutral"), [0.2, 0.7, 0.1]
    pols = [p for _, p in polarity.resolve("org/m", labels)]
    route = SimpleNamespace(model=SimpleNamespace(labels=labels), polarity=pols)
    assert Route.result(route, probs)["signed_score"] == polarity.signed_score(probs, pols) == pytest.approx(0.5)
    assert signed_score([0.2, 0.7, 0.1], ("negative", "positive", "neutral")) == pytest.approx(0.5)
    with pytest.raises(polarity.PolarityError, match="mean nothing"):
        polarity.resolve("org/m", ("LABEL_0", "LABEL_1"))
    with pytest.raises(ValueError, match="no 'positive' label"):
        signed_score([0.5, 0.5], ("negative", "neutral"))
    with pytest.raises(ValueError, match="3 probabilities for 2 labels"):
        polarity.signed_score(probs, pols[:2])
