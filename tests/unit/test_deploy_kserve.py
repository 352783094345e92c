"""deploy/kserve, checked without a cluster: rendered with `kubectl kustomize`; the core objects and every
container embedded in a custom resource (as a Pod) with `kubernetes-validate --strict` at 1.35 and 1.37; the
custom resources (ClusterStorageContainer, InferenceService) against the restated CRD schemas of
tests/_crd_schemas.py; Pod Security "restricted"; and the wiring between them (URI prefix, lock, volume).
Running the storage initializer itself is tests/integration/test_kserve_storage_init.py."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from _crd_schemas import custom_violations, embedded_pods, is_custom
from _k8s_policy import REPO, render, restricted_violations

from smart_model_manager.formats import lockfile

pytestmark = pytest.mark.unit

KSERVE = REPO / "deploy" / "kserve"


@pytest.fixture(scope="module")
def objs() -> list[dict]:
    return render(KSERVE)


def _one(objs: list[dict], kind: str) -> dict:
    (found,) = [o for o in objs if o["kind"] == kind]
    return found


def test_renders_the_three_objects_in_one_namespace(objs: list[dict]) -> None:
    assert sorted(o["kind"] for o in objs) == ["ClusterStorageContainer", "ConfigMap", "InferenceService"]
    assert "namespace" not in _one(objs, "ClusterStorageContainer")["metadata"]  # cluster-scoped: none set
    assert {o["metadata"].get("namespace") for o in objs if o["kind"] != "ClusterStorageContainer"} == {"smm-kserve"}


@pytest.mark.parametrize("version", ["1.35", "1.37"])
def test_core_objects_and_embedded_containers_validate_strict(objs: list[dict], version: str,
                                                              tmp_path: Path) -> None:
    from test_deploy_k3s import validate_strict

    core = [o for o in objs if not is_custom(o)]
    pods = [p for o in objs if is_custom(o) for p in embedded_pods(o)]
    assert len(pods) == 2  # the storage initializer and the predictor
    validate_strict(core + pods, tmp_path / "kserve.yaml", versions=(version,))


def test_custom_resources_match_their_crd_schemas(objs: list[dict]) -> None:
    for o in objs:
        if is_custom(o):
            assert custom_violations(o) == [], custom_violations(o)
    import copy

    bad = copy.deepcopy(_one(objs, "ClusterStorageContainer"))
    bad["spec"]["supportedUriFormat"] = bad["spec"].pop("supportedUriFormats")  # a typo kubectl would reject
    assert any("supportedUriFormat" in v for v in custom_violations(bad))


def test_containers_pass_pod_security_restricted(objs: list[dict]) -> None:
    """The pod-level fields are KServe's to set; each container's own hardening is ours. The storage
    initializer gets no /tmp volume (KServe gives it none): it writes only under its target folder, which
    tests/integration/test_kserve_storage_init.py checks."""
    pod_level = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for o in objs:
        for pod in embedded_pods(o):
            spec = {"automountServiceAccountToken": False, **pod["spec"], "securityContext": pod_level}
            found = restricted_violations(spec)
            if o["kind"] == "ClusterStorageContainer":
                found = [v for v in found if "writable /tmp" not in v]
            assert found == [], (o["kind"], found)


def test_the_storage_container_is_what_kserve_expects_and_runs_a_real_smm_pull(objs: list[dict]) -> None:
    from test_deploy_k3s import _cli_options

    csc = _one(objs, "ClusterStorageContainer")["spec"]
    container = csc["container"]
    assert container["name"] == "storage-initializer"  # KServe finds its init container by this name
    assert csc["supportedUriFormats"] == [{"prefix": "smm://"}]
    command = container["command"]
    assert command[:2] == ["/bin/sh", "-c"] and "args" not in container  # KServe appends URI and folder as args
    pull = next(line.strip() for line in command[2].splitlines() if "smm pull" in line)
    argv = shlex.split(pull.removeprefix("exec "))
    _, opts = _cli_options(argv)
    assert {w for w in argv if w.startswith("--")} <= opts, argv
    assert "--lock" in argv and "--only" in argv and "--target" in argv
    env = {e["name"]: e for e in container["env"]}
    ref = env["SMM_LOCK_TEXT"]["valueFrom"]["configMapKeyRef"]
    cm = _one(objs, "ConfigMap")
    assert ref["name"] == cm["metadata"]["name"] and ref["key"] in cm["data"]


def test_the_predictor_serves_a_lock_alias_from_the_initialised_volume(objs: list[dict]) -> None:
    isvc = _one(objs, "InferenceService")
    (container,) = isvc["spec"]["predictor"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    uri = env["STORAGE_URI"]
    assert uri.startswith("smm://")
    lock = lockfile.loads(_one(objs, "ConfigMap")["data"]["models.lock"], "ConfigMap smm-kserve-lock")
    alias = uri.removeprefix("smm://")
    assert alias in lock.models, (alias, list(lock.models))
    assert env["SMM_VOLUME_DIR"] == "/mnt/models" and env["SMM_LOCK"] == "/mnt/models/.smm/models.lock"
    assert env["SMM_ENV"] == "production" and env["HF_HUB_OFFLINE"] == "1"
    args = container["args"]
    assert args[args.index("--model") + 1] == alias
    probes = {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}
    assert probes == {"/readyz", "/healthz"}


def test_the_lock_shipped_is_the_k3s_one() -> None:
    ours = lockfile.load(KSERVE / "models.lock")
    k3s = lockfile.load(REPO / "deploy" / "k3s" / "base" / "models.lock")
    assert ours.models == k3s.models
    assert yaml.safe_load((KSERVE / "models.lock").read_text())["models"].keys() == ours.models.keys()
