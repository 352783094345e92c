"""Thread sizing from a fake cgroup tree: quota, affinity and cpu_count, the smallest wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from smart_model_manager.errors import ConfigurationError
from smart_model_manager.loaders.cpu import available_cpus, cgroup_quota, cpu_limits, default_threads

pytestmark = pytest.mark.unit

EIGHT = set(range(8))


def fake_cgroup(tmp_path: Path, cpu_max: str | None, own: str = "") -> tuple[Path, Path]:
    """A cgroup v2 root with ``cpu.max`` (at the process's own cgroup ``own``) + a /proc/self/cgroup."""
    root = tmp_path / "cgroup"
    node = root / own if own else root
    node.mkdir(parents=True)
    if cpu_max is not None:
        (node / "cpu.max").write_text(cpu_max + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::/{own}\n")
    return root, proc


@pytest.mark.parametrize(("cpu_max", "expected"), [
    ("max 100000", 8),          # unlimited: affinity/cpu_count decide
    ("150000 100000", 2),       # 1.5 CPUs rounds up
    ("50000 100000", 1),        # half a CPU is still one thread
    ("400000 100000", 4),
    ("200000", 2),              # period omitted: kernel default 100000
])
def test_cpu_max_quota(tmp_path: Path, cpu_max: str, expected: int) -> None:
    root, proc = fake_cgroup(tmp_path, cpu_max)
    assert available_cpus(root, proc_self_cgroup=proc, affinity=EIGHT, cpu_count=8) == expected


def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, None)
    assert cgroup_quota(root, proc_self_cgroup=proc) is None
    assert available_cpus(root, proc_self_cgroup=proc, affinity=EIGHT, cpu_count=8) == 8


def test_affinity_smaller_than_quota_wins(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "400000 100000")
    limits = cpu_limits(root, proc_self_cgroup=proc, affinity={0, 3}, cpu_count=16)
    assert (limits.quota, limits.affinity, limits.cpu_count) == (4, 2, 16)
    assert limits.available == 2


def test_cpu_count_smallest(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "max 100000")
    assert available_cpus(root, proc_self_cgroup=proc, affinity=EIGHT, cpu_count=3) == 3


def test_nested_cgroup_tightest_ancestor_applies(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "600000 100000", own="kubepods/pod1/ctr")
    (root / "kubepods").mkdir(exist_ok=True)
    (root / "kubepods" / "cpu.max").write_text("300000 100000\n")
    assert cgroup_quota(root, proc_self_cgroup=proc) == 3


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text("250000\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "nope"
    assert available_cpus(root, proc_self_cgroup=proc, affinity=EIGHT, cpu_count=8) == 3
    (root / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(root, proc_self_cgroup=proc, affinity=EIGHT, cpu_count=8) == 8


def test_garbage_cpu_max_is_ignored(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "lots please")
    assert available_cpus(root, proc_self_cgroup=proc, affinity=EIGHT, cpu_count=8) == 8


def test_explicit_threads_override(tmp_path: Path) -> None:
    root, proc = fake_cgroup(tmp_path, "50000 100000")
    assert default_threads(None, cgroup_root=root, proc_self_cgroup=proc, affinity=EIGHT, cpu_count=8) == 1
    assert default_threads(6, cgroup_root=root, proc_self_cgroup=proc, affinity=EIGHT, cpu_count=8) == 6


@pytest.mark.parametrize("bad", [0, -2, True, 1.5])
def test_explicit_threads_must_be_positive_int(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="SMM_NUM_THREADS"):
        default_threads(bad)  # type: ignore[arg-type]


def test_real_machine_is_sane() -> None:
    n = available_cpus()
    assert 1 <= n <= (len(__import__("os").sched_getaffinity(0)))
