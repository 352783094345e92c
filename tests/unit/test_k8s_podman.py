"""scripts/k8s_podman.py: each translation of the rendered dev overlay for podman 4.3, and what it keeps."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml
from _k8s_policy import K3S, REPO, all_containers, render

pytestmark = pytest.mark.unit

spec = importlib.util.spec_from_file_location("k8s_podman", REPO / "scripts" / "k8s_podman.py")
assert spec and spec.loader
k8s_podman = importlib.util.module_from_spec(spec)
sys.modules["k8s_podman"] = k8s_podman
spec.loader.exec_module(k8s_podman)

IMAGE = "localhost/test-image:1"


@pytest.fixture(scope="module")
def objs() -> list[dict]:
    return render(K3S / "overlays" / "dev")


def two_replicas(objs: list[dict]) -> list[dict]:
    out = json.loads(json.dumps(objs))
    next(o for o in out if o["kind"] == "Deployment")["spec"]["replicas"] = 2
    return out


def test_job_becomes_a_pod_that_never_restarts(objs: list[dict]) -> None:
    res = k8s_podman.translate(objs, prefix="t", image=IMAGE, base_port=19000)
    (job,) = res["jobs"]
    src = next(o for o in objs if o["kind"] == "Job")["spec"]["template"]["spec"]
    assert job["kind"] == "Pod" and job["metadata"]["name"] == "t-provision-models"
    assert job["spec"]["restartPolicy"] == "Never"
    # commands, env and security settings come through unchanged
    for (_, got), (_, want) in zip(all_containers(job["spec"]), all_containers(src), strict=True):
        assert got["command"] == want["command"]
        renamed = json.loads(json.dumps(want["env"]).replace('"name": "smm-settings"', '"name": "t-smm-settings"'))
        assert got["env"] == renamed
        assert got["securityContext"] == want["securityContext"] and got["resources"] == want["resources"]
    assert job["spec"]["securityContext"] == src["securityContext"]


def test_one_pod_per_replica_each_on_its_own_loopback_port(objs: list[dict]) -> None:
    res = k8s_podman.translate(two_replicas(objs), prefix="t", image=IMAGE, base_port=19000)
    pods = res["deployments"]
    assert [p["metadata"]["name"] for p in pods] == ["t-sentiment-analyzer-0", "t-sentiment-analyzer-1"]
    assert res["ports"] == {"t-sentiment-analyzer-0": 19000, "t-sentiment-analyzer-1": 19001}
    for pod, port in zip(pods, (19000, 19001), strict=True):
        assert pod["spec"]["hostNetwork"] is True
        assert pod["spec"]["restartPolicy"] == "OnFailure"  # podman 4.3 restarts exited init containers under Always
        (server,) = pod["spec"]["containers"]
        argv = server["command"]
        assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == str(port)
        assert "0.0.0.0" not in json.dumps(pod)
        for _, c in all_containers(pod["spec"]):
            assert "ports" not in c and not any(k.endswith("Probe") for k in c)
            assert c["image"] == IMAGE and c["imagePullPolicy"] == "Never"
        (init,) = pod["spec"]["initContainers"]
        assert init["command"][:2] == ["smm", "validate"]


def test_emptydirs_get_per_pod_names_and_claims_a_prefix(objs: list[dict]) -> None:
    res = k8s_podman.translate(two_replicas(objs), prefix="t", image=IMAGE, base_port=19000)
    tmp_names = []
    for pod in res["deployments"] + res["jobs"]:
        vols = {v["name"]: v for v in pod["spec"]["volumes"]}
        empties = [n for n, v in vols.items() if "emptyDir" in v]
        assert empties and all(n.startswith(pod["metadata"]["name"] + "-") for n in empties)
        tmp_names += empties
        for _, c in all_containers(pod["spec"]):
            assert {m["name"] for m in c["volumeMounts"]} <= vols.keys()
        claims = [v["persistentVolumeClaim"]["claimName"] for v in vols.values() if "persistentVolumeClaim" in v]
        assert claims == ["t-models"]
    assert len(tmp_names) == len(set(tmp_names))
    service = res["deployments"][0]["spec"]
    models = next(v for v in service["volumes"] if "persistentVolumeClaim" in v)
    assert models["persistentVolumeClaim"]["readOnly"] is True  # read-only survives the translation
    (pvc,) = res["pvc"]
    assert pvc["metadata"]["name"] == "t-models" and "storageClassName" not in pvc["spec"]


def test_dropped_and_refused_kinds(objs: list[dict]) -> None:
    res = k8s_podman.translate(objs, prefix="t", image=IMAGE, base_port=19000)
    kinds = {o["kind"] for key in ("pvc", "configmaps", "jobs", "deployments") for o in res[key]}
    assert kinds == {"PersistentVolumeClaim", "ConfigMap", "Pod"}
    (cm,) = res["configmaps"]
    assert cm["metadata"]["name"] == "t-" + res["lock_configmap"] and "models.lock" in cm["data"]
    assert res["lock_configmap"].startswith("smm-models-lock-")
    for pod in res["jobs"] + res["deployments"]:  # every reference follows the rename
        refs = [v["configMap"]["name"] for v in pod["spec"]["volumes"] if "configMap" in v]
        refs += [e["valueFrom"]["configMapKeyRef"]["name"] for _, c in all_containers(pod["spec"])
                 for e in c.get("env") or [] if "configMapKeyRef" in e.get("valueFrom", {})]
        assert refs and all(r.startswith("t-") for r in refs), refs
    with pytest.raises(k8s_podman.TranslationError, match="StatefulSet"):
        k8s_podman.translate(objs + [{"kind": "StatefulSet", "metadata": {"name": "x"}}], prefix="t",
                             image=IMAGE, base_port=1)
    bad = json.loads(json.dumps(objs))
    dep = next(o for o in bad if o["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}})
    with pytest.raises(k8s_podman.TranslationError, match="volume h"):
        k8s_podman.translate(bad, prefix="t", image=IMAGE, base_port=1)


def test_the_command_line_writes_play_files(objs: list[dict], tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(objs))
    out = tmp_path / "play"
    assert k8s_podman.main([str(rendered), str(out), "--prefix", "t", "--image", IMAGE, "--base-port", "19000"]) == 0
    assert yaml.safe_load((out / "pvc.yaml").read_text())["kind"] == "PersistentVolumeClaim"
    for name in ("jobs", "deployments"):  # one Pod per file
        files = sorted((out / name).iterdir())
        assert files and all(yaml.safe_load(f.read_text())["metadata"]["name"] == f.stem for f in files)
    (cm,) = (out / "configmaps").iterdir()
    assert yaml.safe_load(cm.read_text())["metadata"]["name"] == cm.stem and cm.stem.startswith("t-smm-models-lock-")


@pytest.fixture(scope="module")
def node_cache_objs(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """prod + the mirror and node-cache components (docs/kubernetes.md, "Several nodes", layout b)."""
    folder = tmp_path_factory.mktemp("k3s") / "k3s"
    import shutil

    shutil.copytree(K3S, folder)
    (folder / "overlays" / "local-node-cache").mkdir()
    (folder / "overlays" / "local-node-cache" / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["../prod"],
        "components": ["../../components/mirror", "../../components/node-cache"]}))
    return render(folder / "overlays" / "local-node-cache")


def test_node_cache_layout_daemonset_pv_secret_and_service_names(node_cache_objs: list[dict]) -> None:
    res = k8s_podman.translate(node_cache_objs, prefix="t", image=IMAGE, base_port=19000,
                               secrets=frozenset({"smm-mirror-token"}))
    # the service's replicas stay "deployments"; the mirror is another Deployment, on the next port
    assert res["ports"] == {"t-sentiment-analyzer-0": 19000, "t-sentiment-analyzer-1": 19001}
    assert res["other_ports"] == {"t-smm-mirror-0": 19002}
    (mirror,) = res["others"]
    (mc,) = mirror["spec"]["containers"]
    argv = mc["command"]
    assert argv[:3] == ["smm", "mirror", "serve"] and argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == "19002" and "0.0.0.0" not in argv
    token_vol = next(v for v in mirror["spec"]["volumes"] if v["name"] == "token")
    assert token_vol == {"name": "token", "configMap": {"name": "t-smm-mirror-token", "defaultMode": 0o440}}
    # the DaemonSet is one Pod on this one node; its init container pulls from the mirror's loopback port
    (node,) = res["daemonsets"]
    assert node["metadata"]["name"] == "t-smm-node-cache-node0" and node["spec"]["restartPolicy"] == "OnFailure"
    pull = node["spec"]["initContainers"][0]
    env = {e["name"]: e for e in pull["env"]}
    assert env["HF_ENDPOINT"]["value"] == "http://127.0.0.1:19002"  # was http://smm-mirror:8080
    assert env["HF_TOKEN"]["valueFrom"] == {"configMapKeyRef": {"name": "t-smm-mirror-token", "key": "token"}}
    # the hostPath PersistentVolume is gone; its claim is a plain named volume the pods share read-only
    assert "PersistentVolume" not in {o["kind"] for key in ("pvc", "jobs", "deployments") for o in res[key]}
    claims = {p["metadata"]["name"]: p["spec"] for p in res["pvc"]}
    assert set(claims) == {"t-models", "t-models-node-cache"} and "volumeName" not in claims["t-models-node-cache"]
    for pod in res["deployments"]:
        models = next(v for v in pod["spec"]["volumes"] if v["name"] == "models")
        assert models["persistentVolumeClaim"] == {"claimName": "t-models-node-cache", "readOnly": True}
    # a Secret the run does not provide keeps its reference (podman skips an absent optional one)
    job_env = [e for _, c in all_containers(res["jobs"][0]["spec"]) for e in c.get("env") or []]
    assert any("secretKeyRef" in (e.get("valueFrom") or {}) for e in job_env)


def test_an_image_volume_becomes_the_read_only_podman_image_mount(tmp_path: Path) -> None:
    comp = tmp_path / "o"
    comp.mkdir()
    import os

    rel = os.path.relpath(K3S, comp)
    (comp / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "smm-t",
        "resources": [f"{rel}/overlays/prod"], "components": [f"{rel}/components/image-volume"]}))
    objs = render(comp)
    dep = next(o for o in objs if o["kind"] == "Deployment")
    ref = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "models")["image"]["reference"]
    with pytest.raises(k8s_podman.TranslationError, match="podman image mount"):
        k8s_podman.translate(objs, prefix="t", image=IMAGE, base_port=19000)
    res = k8s_podman.translate(objs, prefix="t", image=IMAGE, base_port=19000,
                               image_mounts={ref: "/var/lib/containers/storage/overlay/abc/merged"})
    assert not res["jobs"] and not res["pvc"] and len(res["deployments"]) == 2
    for pod in res["deployments"]:
        models = next(v for v in pod["spec"]["volumes"] if v["name"] == "models")
        assert models == {"name": "models", "hostPath": {"path": "/var/lib/containers/storage/overlay/abc/merged",
                                                         "type": "Directory"}}
        for _w, c in all_containers(pod["spec"]):
            assert next(m for m in c["volumeMounts"] if m["name"] == "models")["readOnly"] is True
    rw = json.loads(json.dumps(objs))
    next(o for o in rw if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] = False
    with pytest.raises(k8s_podman.TranslationError, match="read-write"):
        k8s_podman.translate(rw, prefix="t", image=IMAGE, base_port=19000, image_mounts={ref: "/x"})
