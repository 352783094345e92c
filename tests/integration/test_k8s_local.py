"""The rendered Kubernetes manifests, run with real containers (podman kube play) on this machine:
scripts/k8s-local.sh up, check, down. See docs/kubernetes.md, "Running the manifests with podman".

What `up` and `check` assert is listed there; this test runs them end to end and fails with the failing
check and the tail of the step logs. Skips (saying why) when podman, runc or mmdebstrap are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "k8s-local.sh"


def _missing() -> str | None:
    need = ["podman", "runc"] + ([] if os.environ.get("SMM_K8S_BASE") else ["mmdebstrap"])
    absent = [t for t in need if shutil.which(t) is None]
    if absent:
        return f"needs {', '.join(absent)} (apt-get install -y podman runc mmdebstrap; .ci/run does this as root)"
    return None  # a CLI option the manifests need is checked by test_deploy_k3s, and fails there


_SKIP = _missing()
# up + check take 7-14 minutes on 2 shared cores (base image, two image builds, the export, pods): above the
# suite's 300 s default
pytestmark = [pytest.mark.integration, pytest.mark.k8s, pytest.mark.slow, pytest.mark.timeout(1800),
              pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")]


def _free_block(n: int) -> int:
    """The first port of n consecutive free loopback ports (each checked by binding it), from a random
    start: several suites on one machine (CI, helpers) must not race for the same block."""
    import random

    starts = list(range(20000, 40000, 50))
    random.shuffle(starts)
    for base in starts:
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of loopback ports")


def _run(verb: str, env: dict[str, str], log: Path, timeout: float) -> int:
    # Output to a file, not a pipe: pods started by the script would keep a pipe open after it exits.
    with log.open("w") as fh:
        proc = subprocess.Popen(["bash", str(SCRIPT), verb], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 15)
            proc.wait(30)
            return 124


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Iterator[str]:
    """Run `up` then `check` once for the module; yields the combined output; always runs `down`."""
    tmp = tmp_path_factory.mktemp("k8s-local")
    state = tmp / "state"
    env = {**os.environ, "STATE": str(state), "PREFIX": f"smm-e2e-{os.getpid()}",
           "BASE_PORT": str(_free_block(40)),
           # no onnx/ in it (as FinBERT on the Hub): the script exports it in the `export` image
           "DEMO_MODEL_DIR": str(demo_model_dir)}
    assert not (demo_model_dir / "onnx").exists()
    if os.environ.get("SMM_K8S_BASE"):
        env["BASE"] = os.environ["SMM_K8S_BASE"]
    for key in ("HF_ENDPOINT", "SMM_VOLUME_DIR", "MODEL_CACHE_DIR", "HF_HOME"):
        env.pop(key, None)  # the script sets what each step needs
    up, check, down = (tmp / f"{v}.log" for v in ("up", "check", "down"))
    try:
        rc_up = _run("up", env, up, 900)
        assert rc_up == 0, f"k8s-local.sh up failed ({rc_up}):\n{up.read_text()[-4000:]}"
        rc_check = _run("check", env, check, 660)
        out = check.read_text()
        assert rc_check == 0 and "all checks passed" in out, f"k8s-local.sh check failed:\n{out[-4000:]}"
        yield up.read_text() + out
    finally:
        _run("down", env, down, 300)
        leftovers = subprocess.run(["podman", "ps", "-a", "--format", "{{.Names}}"], capture_output=True,
                                   text=True, env={**env, "CONTAINERS_CONF": str(state / "containers.conf")})
        assert env["PREFIX"] not in leftovers.stdout, leftovers.stdout


def test_the_export_image_exports_onnx_non_root_read_only_offline(e2e: str) -> None:
    line = next(x for x in e2e.splitlines() if "export image: onnx/model.onnx exported in the container" in x)
    assert "(uid 10001, read-only root, no network)" in line and "max |onnx - torch| = " in line


def test_two_replicas_serve_from_one_read_only_volume_behind_the_init_gate(e2e: str) -> None:
    for line in ("init container held the service pods on the empty volume and released them",
                 "up: 2 replicas ready on 127.0.0.1",
                 "-sentiment-analyzer-0 on 127.0.0.1:", "-sentiment-analyzer-1 on 127.0.0.1:",
                 "labels ['negative', 'positive']",
                 "uid 10001, no capabilities, seccomp filter, no_new_privs, 1 thread",
                 "/app/models, / and /opt/smm read-only (EROFS)"):
        assert line in e2e, line


def test_a_lock_change_rolls_out_a_new_commit(e2e: str) -> None:
    for line in ("lock change: ConfigMap smm-models-lock-", "held by its init container (init: running",
                 "the Job added commit", "released once the volume held its commit"):
        assert line in e2e, line
    assert e2e.count("-v2-sentiment-analyzer-") >= 2 and e2e.count("-v1-sentiment-analyzer-") >= 4


def test_the_old_commit_still_loads_and_rollback_works(e2e: str) -> None:
    if "SKIP old commit" in e2e:
        pytest.skip(e2e.split("SKIP old commit after a new one / rollback:", 1)[1].splitlines()[0].strip())
    assert "restarted after v2 was provisioned; loads v1 again" in e2e
    assert "rollback: pods with the previous lock load the previous commit" in e2e


def test_several_nodes_layout_b_mirror_node_cache_read_only_copy(e2e: str) -> None:
    """docs/kubernetes.md, "Several nodes", layout (b), on this one node: the mirror and node-cache components."""
    for line in ("-nodecache-smm-mirror-0 on 127.0.0.1:", "401 without the token, 200 with it",
                 "-nodecache-smm-node-cache-node0: pulled commit", "its verify container runs",
                 "-nodecache-sentiment-analyzer-0: held by its init container",
                 "-nodecache-sentiment-analyzer-1: released once the volume held its commit",
                 "node-cache: the service pods serve from the node-local copy, mounted read-only"):
        assert line in e2e, line


def test_models_as_oci_images_build_push_mount_serve_roll_out_back_and_refuse_tampering(e2e: str) -> None:
    """docs/kubernetes.md, "Models as OCI images": the image-volume component with a real registry."""
    if "SKIP models as OCI images" in e2e:
        pytest.skip(e2e.split("SKIP models as OCI images:", 1)[1].splitlines()[0].strip())
    for line in ("pushed to the registry, digest kept", "bytes pulled for v2 after v1:",
                 "podman run --mount type=image,source=<v1 digest>,destination=/app/models,rw=false: validates",
                 "-img-v1-sentiment-analyzer-0 on 127.0.0.1:", "-img-v1-sentiment-analyzer-1 on 127.0.0.1:",
                 "image-volume: 2 replicas serve v1 from the image, read-only, with no PVC and no provisioning Job",
                 "rollout by digest: new pods serve v2, old pods keep v1",
                 "rollback: the previous digest and lock, new pods serve v1's exact bytes",
                 "tampered layer pushed under the same tag"):
        assert line in e2e, line
    words = e2e.split("bytes pulled for v2 after v1: ", 1)[1].split()
    downloaded, reused = int(words[0]), int(words[2])
    assert downloaded * 20 < reused, words[:4]  # the changed small files and metadata, not the weights
    assert "podman pulled " in e2e and "bytes for v2" in e2e
