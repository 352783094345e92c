"""scripts/k3s-models.sh against a fake kubectl (records every call, answers from environment variables;
`kustomize` is the real one), plus local mode against a real volume."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from _k8s_policy import REPO, kubectl
from _model_folders import make_model_folder
from _volumes import make_volume

pytestmark = [pytest.mark.unit, pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")]

SCRIPT = REPO / "scripts" / "k3s-models.sh"
FAKE = r"""#!/usr/bin/env bash
# fake kubectl: log argv, answer from FAKE_* variables
printf '%s\n' "$*" >> "$FAKE_LOG"
args=("$@")
if [ "${args[0]}" = "-n" ]; then args=("${args[@]:2}"); fi
case "${args[0]}" in
  cluster-info) [ "${FAKE_CLUSTER:-up}" = up ] ;;
  kustomize) exec "$REAL_KUBECTL" "${args[@]}" ;;
  apply) n=$(ls "$FAKE_DIR" | grep -c applied); cat "${args[2]}" > "$FAKE_DIR/applied-$n.yaml" ;;
  delete|rollout) exit 0 ;;
  logs) echo "fake log of ${args[*]:1}" ;;
  get)
    case "${args[1]}" in
      job/*) case "$*" in *Failed*message*) echo "BackoffLimitExceeded";; *) printf '%s' "${FAKE_JOB:-}";; esac ;;
      deploy/*) printf '%s' "${FAKE_DEPLOY:-img@sha256:1|smm-models-lock-abc|models}" ;;
      pod/*) printf '%s' "${FAKE_POD_PHASE:-Succeeded}" ;;
      *) echo "listing ${args[*]:1}" ;;
    esac ;;
  *) echo "fake kubectl: unexpected $*" >&2; exit 3 ;;
esac
"""


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, str]:
    exe = tmp_path / "kubectl"
    exe.write_text(FAKE)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "calls.log"
    log.touch()
    return {"KUBECTL": str(exe), "REAL_KUBECTL": kubectl(), "FAKE_LOG": str(log), "FAKE_DIR": str(tmp_path),
            "POLL": "1", "OVERLAY": str(REPO / "deploy" / "k3s" / "overlays" / "dev"),
            "KUBECONFIG": os.devnull}


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    full.pop("SMM_K3S_LOCAL", None) if "SMM_K3S_LOCAL" not in env else None
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=timeout)


def calls(env: dict[str, str]) -> list[str]:
    return Path(env["FAKE_LOG"]).read_text().splitlines()


def test_script_is_shellcheck_clean() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck); bash -n passed")
    proc = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_a_failed_job_fails_at_once_with_its_log(fake: dict[str, str]) -> None:
    start = time.monotonic()
    proc = run("provision", env={**fake, "FAKE_JOB": "Failed ", "WAIT_TIMEOUT": "1800"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert time.monotonic() - start < 30  # not the 30-minute timeout
    assert "Job provision-models failed" in proc.stderr and "BackoffLimitExceeded" in proc.stderr
    assert "fake log of job/provision-models" in proc.stderr
    log = calls(fake)
    i_delete = next(i for i, c in enumerate(log) if c.startswith("-n smm-dev delete job/provision-models"))
    i_apply = next(i for i, c in enumerate(log) if c.startswith("apply -f"))
    assert i_delete < i_apply, log  # the immutable Job is replaced, not patched
    assert not any("rollout" in c for c in log)


def test_setup_is_provision_and_applies_the_rendered_overlay(fake: dict[str, str]) -> None:
    proc = run("setup", env={**fake, "FAKE_JOB": "Complete "})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    applied = [d for d in yaml.safe_load_all((Path(fake["FAKE_DIR"]) / "applied-0.yaml").read_text()) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in applied}
    assert {("Job", "provision-models"), ("Deployment", "sentiment-analyzer")} <= kinds
    assert any(c.startswith("-n smm-dev rollout status deploy/sentiment-analyzer") for c in calls(fake))


def test_the_image_volume_layout_provisions_without_a_job(fake: dict[str, str], tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    rel = os.path.relpath(REPO / "deploy" / "k3s", overlay)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "smm-img",
        "resources": [f"{rel}/overlays/prod"], "components": [f"{rel}/components/image-volume"]}))
    proc = run("provision", env={**fake, "OVERLAY": str(overlay), "FAKE_JOB": "Failed "})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no provisioning Job needed" in proc.stdout
    log = calls(fake)
    assert not any("job/" in c for c in log), log  # no Job deleted, waited for or logged
    assert any(c.startswith("-n smm-img rollout status deploy/sentiment-analyzer") for c in log)
    applied = [d for d in yaml.safe_load_all((Path(fake["FAKE_DIR"]) / "applied-0.yaml").read_text()) if d]
    assert "Job" not in {d["kind"] for d in applied}


def test_a_job_that_never_finishes_times_out(fake: dict[str, str]) -> None:
    proc = run("provision", env={**fake, "FAKE_JOB": "", "WAIT_TIMEOUT": "2"})
    assert proc.returncode == 1 and "not finished after 2s" in proc.stderr


def test_an_unreachable_cluster_is_an_error_not_a_local_fallback(fake: dict[str, str], tmp_path: Path) -> None:
    for verb in ("validate", "status", "provision", "logs", "cleanup"):
        proc = run(verb, env={**fake, "FAKE_CLUSTER": "down", "SMM_VOLUME_DIR": str(tmp_path)})
        assert proc.returncode == 1, (verb, proc.stdout, proc.stderr)
        assert "unreachable" in proc.stderr and "Nothing was done" in proc.stderr, verb
        assert "locally" not in proc.stderr and "this machine" not in proc.stderr
    assert all(c.startswith("cluster-info") for c in calls(fake))
    missing = run("status", env={**fake, "KUBECTL": str(tmp_path / "no-such-kubectl")})
    assert missing.returncode == 1 and "SMM_K3S_LOCAL=1" in missing.stderr


def test_status_selects_the_stack_by_a_label_its_pods_carry(fake: dict[str, str]) -> None:
    from _k8s_policy import pod_specs, render

    proc = run("status", env=fake)
    assert proc.returncode == 0, proc.stderr
    (sel,) = [c for c in calls(fake) if " get " in f" {c} " and "-l" in c]
    key, value = sel.split("-l ")[1].split()[0].split("=")
    objs = render(REPO / "deploy" / "k3s" / "overlays" / "dev")
    for o in objs:
        if o["kind"] in ("Deployment", "Job", "PersistentVolumeClaim"):
            assert o["metadata"]["labels"][key] == value, o["metadata"]
            if "template" in o["spec"]:
                assert o["spec"]["template"]["metadata"]["labels"][key] == value
    assert list(pod_specs(objs))


@pytest.mark.parametrize(("phase", "code"), [("Succeeded", 0), ("Failed", 1)])
def test_validate_runs_its_own_read_only_pod(fake: dict[str, str], phase: str, code: int) -> None:
    from _k8s_policy import restricted_violations

    proc = run("validate", "--full", env={**fake, "FAKE_POD_PHASE": phase})
    assert proc.returncode == code, proc.stdout + proc.stderr
    pod = yaml.safe_load((Path(fake["FAKE_DIR"]) / "applied-0.yaml").read_text())
    assert pod["kind"] == "Pod" and pod["spec"]["restartPolicy"] == "Never"
    (c,) = pod["spec"]["containers"]
    assert c["image"] == "img@sha256:1" and c["command"][:3] == ["smm", "validate", "--full"]
    assert next(m for m in c["volumeMounts"] if m["mountPath"] == "/app/models")["readOnly"] is True
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["models"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert vols["lock"]["configMap"]["name"] == "smm-models-lock-abc"
    assert restricted_violations(pod["spec"]) == []
    log = calls(fake)
    assert not any(" exec " in f" {c} " for c in log)  # never inside the serving pod
    assert any(c.startswith("-n smm-dev delete pod/smm-validate-") for c in log)


def test_usage_errors(fake: dict[str, str]) -> None:
    assert run("bogus", env=fake).returncode == 2
    assert run("reset", env=fake).returncode == 2  # needs --yes
    assert run("validate", "--bogus", env=fake).returncode == 2


def test_local_mode_validates_and_lists_a_volume(tmp_path: Path) -> None:
    v = tmp_path / "models"
    make_volume(v, {"acme/a": make_model_folder(tmp_path / "a", {"model.safetensors": os.urandom(999)})})
    env = {"SMM_VOLUME_DIR": str(v), "SMM_K3S_LOCAL": "1", "SMM": str(Path(sys.executable).with_name("smm")),
           "KUBECTL": str(tmp_path / "no-kubectl")}
    ok = run("validate", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "this machine" in ok.stderr and ok.stdout.startswith("OK:") and "(quick" in ok.stdout
    status = run("status", env=env)
    assert status.returncode == 0 and "acme/a" in status.stdout
    blobs = sorted((v / "models--acme--a" / "blobs").iterdir(), key=lambda p: p.stat().st_size)
    with open(blobs[-1], "r+b") as fh:  # the 999-byte weights: flip one byte
        b = fh.read(1)
        fh.seek(0)
        fh.write(bytes([b[0] ^ 1]))
    assert run("validate", env=env).returncode == 0  # quick: same size, no hashing
    bad = run("validate", "--full", env=env)
    assert bad.returncode == 1 and "corrupt" in bad.stdout and "model.safetensors" in bad.stdout
    assert run("provision", env=env).returncode == 1  # provisioning always needs a cluster


def test_prune_runs_its_own_read_write_pod_with_a_real_command(fake: dict[str, str]) -> None:
    from _k8s_policy import restricted_violations

    from smart_model_manager.cli.main import cli

    proc = run("prune", "2", "--dry-run", env=fake)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pod = yaml.safe_load((Path(fake["FAKE_DIR"]) / "applied-0.yaml").read_text())
    (c,) = pod["spec"]["containers"]
    argv = c["command"]
    assert argv == ["smm", "prune", "--dir", "/app/models", "--lock", "/app/lock/models.lock", "--keep-locks", "2",
                    "--dry-run"]
    assert next(m for m in c["volumeMounts"] if m["mountPath"] == "/app/models")["readOnly"] is False
    assert restricted_violations(pod["spec"]) == []
    assert run("prune", "x", env=fake).returncode == 2 and run("prune", "2", "--all", env=fake).returncode == 2
    prune = cli.get_command(None, "prune")
    opts = {o for p in prune.params for o in getattr(p, "opts", [])}
    missing = {w for w in argv if w.startswith("--")} - opts
    assert not missing, missing
