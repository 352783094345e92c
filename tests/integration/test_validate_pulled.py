"""validate / ls / prune on folders written by the real `smm pull` from a mirror on 127.0.0.1 (no weights
loaded): lock digests agree, a new upstream commit shows as stale until re-provisioned, the leftover
snapshot is a warning, and prune on the cache frees exactly what it planned."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager.cli.main import main
from smart_model_manager.formats import lockfile
from smart_model_manager.formats.spec import loads as load_spec
from smart_model_manager.mirror import MirrorServer
from smart_model_manager.ops import maintenance
from smart_model_manager.ops.lock import resolve_lock
from smart_model_manager.ops.pull import pull
from smart_model_manager.ops.validate import validate

try:
    from ._artifacts_fixtures import hub_like_root, make_sentiment_folder
except ImportError:
    from _artifacts_fixtures import hub_like_root, make_sentiment_folder

pytestmark = pytest.mark.integration

REPO_ID = "org/news-sentiment"
SPEC = f"models:\n  news:\n    repo_id: {REPO_ID}\n    model_type: sentiment\n"


def regular_bytes(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def test_validate_follows_the_lock_through_an_upstream_update(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    upstream, vol, cache = tmp_path / "upstream", tmp_path / "vol", tmp_path / "cache"
    v1 = hub_like_root(make_sentiment_folder(tmp_path / "v1", seed=b"one"), upstream, REPO_ID)
    with MirrorServer(upstream) as mirror:
        spec = load_spec(SPEC, "models.yaml")
        lockfile.write_lock(tmp_path / "v1.lock", resolve_lock(spec, mirror.url, timeout=10, retries=0))
        lock1 = lockfile.load(tmp_path / "v1.lock")
        pull(lock1, target=vol, endpoint=mirror.url, timeout=10, retries=0)
        pull(lock1, cache_dir=cache, endpoint=mirror.url, timeout=10, retries=0)

        r = validate(vol, lock=lock1, mode="full")
        assert r.ok and r.findings == () and r.files_checked == len(lock1.models["news"].files)
        assert main(["validate", "--full", "--dir", str(cache), "--lock", str(tmp_path / "v1.lock")]) == 0

        # upstream publishes new weights on main; the lock follows
        v2 = hub_like_root(make_sentiment_folder(tmp_path / "v2", seed=b"two"), upstream, REPO_ID)
        assert v2 != v1
        lockfile.write_lock(tmp_path / "v2.lock", resolve_lock(spec, mirror.url, timeout=10, retries=0))
        lock2 = lockfile.load(tmp_path / "v2.lock")
        assert lock2.models["news"].commit == v2

        stale = validate(vol, lock=lock2)
        assert not stale.ok
        assert [(f.kind, f.expected, f.actual) for f in stale.errors] == [("stale", v2, v1)]  # not provisioned yet
        assert main(["validate", "--dir", str(vol), "--lock", str(tmp_path / "v2.lock")]) == 1
        capsys.readouterr()

        pull(lock2, target=vol, endpoint=mirror.url, timeout=10, retries=0)
        pull(lock2, cache_dir=cache, endpoint=mirror.url, timeout=10, retries=0)

    r = validate(vol, lock=lock2, mode="full")
    assert r.ok and r.findings == () and r.files_checked == len(lock2.models["news"].files)
    # v1 stays recorded next to v2: pods of the old lock keep validating (and loading) until rolled
    old = validate(vol, lock=lock1, mode="full")
    assert old.ok and old.findings == ()
    assert validate(vol, mode="full").files_checked == 2 * len(lock2.models["news"].files)  # no lock: every commit

    listing = {x.repo_id: x for x in maintenance.list_models(cache, lock=lock2).repos}
    revs = {rv.commit: rv for rv in listing[REPO_ID].revisions}
    assert revs[v2].locked and revs[v2].refs == ("main",) and not revs[v1].locked

    # the cache's refs/main moved to v2 and nothing pins v1 any more: prune removes it and its blobs
    plan = maintenance.plan_prune(cache, lock=lock2, min_age=0)
    assert {(i.kind, Path(i.path).name) for i in plan.items if i.kind == "revision"} == {("revision", v1)}
    before = regular_bytes(cache)
    result = maintenance.execute_prune(plan, lock=lock2, min_age=0)
    assert before - regular_bytes(cache) == plan.total_bytes == result.freed_bytes > 0
    assert main(["validate", "--full", "--dir", str(cache), "--lock", str(tmp_path / "v2.lock")]) == 0
