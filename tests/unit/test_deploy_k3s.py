"""deploy/k3s manifests, scripts/k3s-models.sh (local mode) and the CI template: they parse and say what
the docs promise (read-only volume, startup probe = `smm validate --quick`, threads from the CPU limit)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _volumes import make_model_folder, make_volume

from smart_model_manager import manifest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
K3S = REPO / "deploy" / "k3s"
NS = "crypto-data-collection"
SCRIPT = REPO / "scripts" / "k3s-models.sh"


def docs() -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted(K3S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc, f"{path}: empty document"
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in out, f"{path}: {key} defined twice"
            out[key] = doc
    return out


def test_every_manifest_parses_and_lives_in_the_namespace() -> None:
    d = docs()
    assert set(d) == {("Namespace", NS), ("PersistentVolumeClaim", "models"), ("Job", "provision-models"),
                      ("Deployment", "sentiment-analyzer"), ("Service", "sentiment-analyzer")}
    for (kind, name), doc in d.items():
        if kind != "Namespace":
            assert doc["metadata"]["namespace"] == NS, (kind, name)
    kust = yaml.safe_load((K3S / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(p.name for p in K3S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_the_job_provisions_the_pvc_with_smm_pull() -> None:
    job = docs()[("Job", "provision-models")]["spec"]["template"]["spec"]
    (c,) = job["containers"]
    script = " ".join(c["command"] + c["args"])
    assert "smm pull --target /app/models" in script and "smm validate --full --dir /app/models" in script
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["models"]["mountPath"] == "/app/models" and not mounts["models"].get("readOnly")
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in job["volumes"]}
    assert claims["models"] == "models"
    assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]


def test_the_deployment_reads_the_volume_read_only_and_probes_with_validate() -> None:
    dep = docs()[("Deployment", "sentiment-analyzer")]["spec"]["template"]["spec"]
    (c,) = dep["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["SMM_ENV"]["value"] == "production" and env["SMM_VOLUME_DIR"]["value"] == "/app/models"
    threads = env["SMM_NUM_THREADS"]["valueFrom"]["resourceFieldRef"]
    assert threads["resource"] == "limits.cpu" and threads["containerName"] == c["name"]
    assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]
    assert c["startupProbe"]["exec"]["command"] == ["smm", "validate", "--quick", "--dir", "/app/models"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/app/models")
    assert mount["readOnly"] is True
    vol = next(v for v in dep["volumes"] if v["name"] == mount["name"])
    assert vol["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert c["command"][:3] == ["smm", "serve", "sentiment"]


def test_the_startup_probe_command_works_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the probe's exact argv against a real volume (with /app/models swapped for the test folder)."""
    from smart_model_manager.cli.main import main

    v = tmp_path / "models"
    make_volume(v, {"acme/a": make_model_folder(tmp_path / "a")})
    monkeypatch.setenv("SMM_VOLUME_DIR", str(v))
    dep = docs()[("Deployment", "sentiment-analyzer")]["spec"]["template"]["spec"]
    argv = [str(v) if a == "/app/models" else a for a in dep["containers"][0]["startupProbe"]["exec"]["command"]]
    assert argv[0] == "smm"
    assert main(argv[1:]) == 0
    (v / manifest.MANIFEST_NAME).unlink()  # half-provisioned: the pod must not start
    assert main(argv[1:]) == 1


def run_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "SMM": str(Path(sys.executable).with_name("smm")), "SMM_K3S_LOCAL": "1"}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=120)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_k3s_models_script_validates_and_lists_a_local_volume(tmp_path: Path) -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    v = tmp_path / "models"
    make_volume(v, {"acme/a": make_model_folder(tmp_path / "a", {"model.safetensors": os.urandom(999)})})
    env = {"SMM_VOLUME_DIR": str(v)}
    ok = run_script("validate", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "validating" in ok.stderr and ok.stdout.startswith("OK:") and "(quick" in ok.stdout
    status = run_script("status", env=env)
    assert status.returncode == 0 and "acme/a" in status.stdout
    blobs = sorted((v / "models--acme--a" / "blobs").iterdir(), key=lambda p: p.stat().st_size)
    with open(blobs[-1], "r+b") as fh:  # the 999-byte weights: flip one byte
        b = fh.read(1)
        fh.seek(0)
        fh.write(bytes([b[0] ^ 1]))
    assert run_script("validate", env=env).returncode == 0           # quick: same size, no hashing
    bad = run_script("validate", "--full", env=env)
    assert bad.returncode == 1 and "corrupt" in bad.stdout and "model.safetensors" in bad.stdout
    assert run_script("bogus", env=env).returncode == 2
    assert run_script("provision", env=env).returncode == 1          # no cluster: says so, does nothing


def test_ci_workflow_runs_the_promised_jobs() -> None:
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    jobs = wf["jobs"]
    unit_cmds = [s.get("run", "") for s in jobs["unit"]["steps"]]
    assert any('pytest -m "unit and not real_models"' in r for r in unit_cmds)
    integ = jobs["integration"]["steps"]
    cache = next(s for s in integ if s.get("uses", "").startswith("actions/cache"))
    assert "hashFiles('models.lock')" in cache["with"]["key"]
    runs = [s.get("run", "") for s in integ]
    assert "smm lock --check" in runs
    for r in runs:
        if r.startswith("smm "):  # every smm command in the template names real options
            from smart_model_manager.cli.main import cli

            words = shlex.split(r)
            cmd = cli.get_command(None, words[1])  # type: ignore[arg-type]
            assert cmd is not None, r
            opts = {o for p in cmd.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
            assert {w for w in words[2:] if w.startswith("--")} <= opts, r
