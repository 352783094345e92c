"""deploy/k3s/components/gpu: what a GPU pod needs, on top of the checks test_deploy_k3s.py runs on every
component (render, kubernetes-validate --strict, Pod Security restricted, project policies)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _k8s_policy import K3S, render

from smart_model_manager import ConfigurationError
from smart_model_manager.loaders.device import Probe, choose_device
from smart_model_manager.settings import Settings

pytestmark = pytest.mark.unit

GPU = K3S / "components" / "gpu"


def _with_gpu(tmp_path: Path, overlay: str, images: list[dict] | None = None) -> list[dict]:
    folder = tmp_path / "with-gpu"
    folder.mkdir()
    ns = yaml.safe_load((K3S / "overlays" / overlay / "kustomization.yaml").read_text())["namespace"]
    up = Path(*[".."] * len(folder.parts[1:]))  # kustomize takes relative paths only
    kust = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": ns,
            "resources": [str(up / (K3S / "overlays" / overlay).relative_to("/"))],
            "components": [str(up / GPU.relative_to("/"))]}
    if images:
        kust["images"] = images
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kust))
    return render(folder)


def _pod(objs: list[dict]) -> dict:
    dep = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "sentiment-analyzer")
    return dep["spec"]["template"]["spec"]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_gpu_pod_asks_for_one_gpu_on_gpu_nodes_and_insists_on_cuda(tmp_path: Path, overlay: str) -> None:
    spec = _pod(_with_gpu(tmp_path, overlay))
    (c,) = spec["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert spec["runtimeClassName"] == "nvidia"
    env = {e["name"]: e for e in c["env"]}
    # explicit cuda: a pod that lands without a usable GPU fails its start instead of serving from the CPU
    assert env["SMM_DEVICE"]["value"] == "cuda"
    s = Settings.from_env({k: v["value"] for k, v in env.items() if "value" in v})
    assert (s.device, s.dtype) == ("cuda", "auto")
    with pytest.raises(ConfigurationError, match="no usable GPU"):
        choose_device(s.device, s.dtype, probe_fn=lambda: Probe(True, (), "torch sees no GPU"))
    # the CUDA image for the server; the lean image stays on the init container (it only validates)
    assert c["image"].split("@")[0].split(":")[0].endswith("smart-model-manager-gpu")
    for init in spec["initContainers"]:
        assert "gpu" not in init["image"] and "nvidia.com/gpu" not in init["resources"].get("limits", {})
    # threads: torch's pool = the CPU request, below the limit, so the feeder thread has room
    req, lim = c["resources"]["requests"]["cpu"], c["resources"]["limits"]["cpu"]
    assert env["SMM_NUM_THREADS"]["valueFrom"]["resourceFieldRef"]["resource"] == "requests.cpu"
    assert int(req) < int(lim) and env["RAYON_NUM_THREADS"]["value"] == req


def test_gpu_image_is_pinned_by_digest_in_an_overlay(tmp_path: Path) -> None:
    digest = "sha256:" + "1" * 64
    spec = _pod(_with_gpu(tmp_path, "prod", [{"name": "smart-model-manager-gpu",
                                              "newName": "registry.example.com/smart-model-manager-gpu",
                                              "digest": digest}]))
    assert spec["containers"][0]["image"] == f"registry.example.com/smart-model-manager-gpu@{digest}"


def test_dockerfile_has_a_separate_gpu_target_and_keeps_runtime_last() -> None:
    text = (K3S.parents[1] / "Dockerfile").read_text()
    stages = [line.split()[-1] for line in text.splitlines() if line.startswith("FROM ")]
    assert "gpu" in stages and stages[-1] == "runtime", stages  # `docker build .` stays the lean image
    gpu_stage = text.split("AS build-gpu", 1)[1].split("\nFROM ", 1)[0]
    assert "torch.version.cuda" in gpu_stage  # refuses to build with a CPU torch wheel
