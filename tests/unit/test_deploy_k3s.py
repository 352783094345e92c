"""deploy/k3s, checked without a cluster: every overlay and every component is rendered with
`kubectl kustomize`, validated with `kubernetes-validate --strict`, held to Pod Security "restricted", and
to the project's policies (read-only model mount, probes on real routes, init command in the CLI, no inline
secrets, image pinned in prod, the lock's hashed ConfigMap name reaching every pod). New overlays and
components (e.g. components/gpu) are picked up automatically."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from _k8s_policy import K3S, all_containers, image_volume_violations, pod_specs, render, restricted_violations

pytestmark = pytest.mark.unit

OVERLAYS = sorted(p for p in (K3S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
COMPONENTS = sorted(p for p in (K3S / "components").iterdir() if (p / "kustomization.yaml").exists())
# Secrets and ConfigMaps the user creates (documented in docs/kubernetes.md); everything else must render.
EXTERNAL = {("Secret", "hf-token"), ("Secret", "smm-mirror-token"), ("ConfigMap", "smm-settings")}
# Components that only make sense together with another one.
NEEDS = {"node-cache": ["mirror"]}
# Components whose fields need a newer schema than the oldest the validator ships: the image volume
# (`volumes[].image`) is beta, on by default, since 1.35.
MIN_SCHEMA = {"component-image-volume": "1.35"}
# Layouts without a provisioning Job (the model image is pulled by the kubelet).
NO_JOB = {"component-image-volume"}


def _targets() -> list[tuple[str, Path, list[Path]]]:
    """(id, overlay, extra components): each overlay alone, then each component on top of prod."""
    out = [(f"overlay-{o.name}", o, []) for o in OVERLAYS]
    prod = K3S / "overlays" / "prod"
    for c in COMPONENTS:
        extra = [K3S / "components" / n for n in NEEDS.get(c.name, [])] + [c]
        out.append((f"component-{c.name}", prod, extra))
    return out


TARGETS = _targets()
IDS = [t[0] for t in TARGETS]


def _folder(tmp_root: Path, overlay: Path, components: list[Path]) -> Path:
    if not components:
        return overlay
    # A throw-away overlay: the target overlay plus components, in the overlay's namespace (what a user
    # gets by listing the components in the overlay itself).
    folder = tmp_root / "with-components"
    folder.mkdir(parents=True, exist_ok=True)
    rel = lambda p: Path(*[".."] * len(folder.parts[1:])) / p.relative_to("/")  # noqa: E731
    own = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": own["namespace"], "labels": own.get("labels", []),  # the overlay's labels reach components
        "resources": [str(rel(overlay))], "components": [str(rel(c)) for c in components]}))
    return folder


_CACHE: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(params=TARGETS, ids=IDS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict]]:
    tid, overlay, comps = request.param
    if tid not in _CACHE:
        _CACHE[tid] = render(_folder(tmp_path_factory.mktemp(tid), overlay, comps))
    return tid, _CACHE[tid]


def objects(objs: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def test_there_are_overlays_and_components() -> None:
    assert {"dev", "prod"} <= {o.name for o in OVERLAYS}
    assert {"namespace", "mirror", "rwx", "node-cache", "service-monitor"} <= {c.name for c in COMPONENTS}
    assert not list(K3S.glob("*.yaml")), "the old flat manifests are gone: use base + overlays"
    base = yaml.safe_load((K3S / "base" / "kustomization.yaml").read_text())
    assert "namespace" not in base and not any("namespace" in r for r in base["resources"])


def test_render_is_complete_and_namespaced(rendered: tuple[str, list[dict]]) -> None:
    """`kubectl apply -k` on its own: every ConfigMap, Secret and claim a pod uses is rendered (or is one
    of the documented, user-created ones), and every namespaced object sits in the overlay's namespace."""
    tid, objs = rendered
    have = {(o["kind"], o["metadata"]["name"]) for o in objs}
    namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] not in
                  ("Namespace", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding")}
    assert len(namespaces) == 1 and None not in namespaces, (tid, namespaces)
    for where, spec in pod_specs(objs):
        for vol in spec.get("volumes") or []:
            if "persistentVolumeClaim" in vol:
                assert ("PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"]) in have, (where, vol)
            if "configMap" in vol:
                assert ("ConfigMap", vol["configMap"]["name"]) in have, (where, vol)
            if "secret" in vol:
                assert ("Secret", vol["secret"]["secretName"]) in have | EXTERNAL, (where, vol)
        for cname, c in all_containers(spec):
            for e in c.get("env") or []:
                ref = e.get("valueFrom") or {}
                for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    if key in ref:
                        assert (kind, ref[key]["name"]) in have | EXTERNAL, (where, cname, e)
    for kind, name in have & {("PersistentVolumeClaim", "models-node-cache")}:
        pvc = objects(objs, kind)[name]
        assert ("PersistentVolume", pvc["spec"]["volumeName"]) in have


def test_kubernetes_validate_strict(rendered: tuple[str, list[dict]], tmp_path: Path) -> None:
    """Core kinds with kubernetes-validate --strict; custom resources (which it would skip with a warning)
    against the restated CRD schemas of tests/_crd_schemas.py."""
    from _crd_schemas import custom_violations, is_custom

    tid, objs = rendered
    core = [o for o in objs if not is_custom(o)]
    for o in objs:
        if is_custom(o):
            assert not custom_violations(o), custom_violations(o)
    oldest = MIN_SCHEMA.get(tid, "1.30")  # the oldest schema the validator ships, or the component needs
    validate_strict(core, tmp_path / f"{tid}.yaml",
                    tuple(v for v in ("1.30", "1.35", "1.37") if float(v) >= float(oldest)))


def validate_strict(objs: list[dict], out: Path, versions: tuple[str, ...] = ("1.30", "1.35", "1.37")) -> None:
    """kubernetes-validate --strict at each version (the oldest schema the validator ships, a recent one and the
    newest): every object must pass, none may be skipped."""
    exe = Path(sys.executable).with_name("kubernetes-validate")
    assert exe.exists(), "kubernetes-validate is part of the dev extra: pip install -e '.[dev]'"
    out.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    for version in versions:
        proc = subprocess.run([str(exe), "--strict", "--kubernetes-version", version, str(out)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count(" passed for resource ") == len(objs), proc.stdout


def test_kubernetes_validate_strict_refuses_unknown_fields(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("kubernetes-validate")
    objs = render(K3S / "overlays" / "dev")
    dep = next(o for o in objs if o["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = True  # wrong level
    out = tmp_path / "bad.yaml"
    out.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    proc = subprocess.run([str(exe), "--strict", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "readOnlyRootFilesystem" in proc.stdout + proc.stderr


def test_every_pod_passes_pod_security_restricted(rendered: tuple[str, list[dict]]) -> None:
    tid, objs = rendered
    specs = list(pod_specs(objs))
    assert specs, tid
    problems = {where: restricted_violations(spec) for where, spec in specs}
    assert not {w: p for w, p in problems.items() if p}, problems


def test_the_restricted_check_catches_the_old_manifests() -> None:
    """The checker is not vacuous: the pod spec the project shipped before (issue 8) breaks it."""
    old = {"securityContext": {"runAsUser": 1000, "fsGroup": 1000},
           "containers": [{"name": "provision", "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}],
           "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/x"}}]}
    found = "\n".join(restricted_violations(old))
    for rule in ("allowPrivilegeEscalation", "drop ALL", "runAsNonRoot", "seccompProfile", "readOnlyRootFilesystem",
                 "automountServiceAccountToken", "sizeLimit", "hostPath"):
        assert rule in found, (rule, found)


def test_namespace_is_labelled_for_restricted_and_not_in_base(rendered: tuple[str, list[dict]]) -> None:
    tid, objs = rendered
    for ns in objects(objs, "Namespace").values():
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    dev = render(K3S / "overlays" / "dev")
    assert objects(dev, "Namespace"), "dev owns its namespace (the namespace component)"
    assert not objects(render(K3S / "overlays" / "prod"), "Namespace"), "prod's namespace is shared"


def _lock_names(objs: list[dict]) -> dict[str, str]:
    out = {}
    for where, spec in pod_specs(objs):
        for vol in spec.get("volumes") or []:
            if vol["name"] == "lock":
                out[where] = vol["configMap"]["name"]
    return out


def test_the_hashed_lock_configmap_reaches_every_pod(rendered: tuple[str, list[dict]]) -> None:
    tid, objs = rendered
    (cm,) = [n for n in objects(objs, "ConfigMap") if n.startswith("smm-models-lock")]
    assert re.fullmatch(r"smm-models-lock-[a-z0-9]{10}", cm), cm
    names = _lock_names(objs)
    assert ("Job/provision-models" in names) is (tid not in NO_JOB) and "Deployment/sentiment-analyzer" in names
    assert set(names.values()) == {cm}, names


def test_a_lock_change_gives_a_new_configmap_name(tmp_path: Path) -> None:
    copy = tmp_path / "k3s"
    shutil.copytree(K3S, copy)
    before = _lock_names(render(copy / "overlays" / "dev"))
    with (copy / "base" / "models.lock").open("a") as fh:
        fh.write("# changed\n")
    after = _lock_names(render(copy / "overlays" / "dev"))
    assert before.keys() == after.keys() and set(before.values()).isdisjoint(after.values())


def _service(objs: list[dict]) -> dict[str, Any]:
    return objects(objs, "Deployment")["sentiment-analyzer"]["spec"]["template"]


def test_the_service_pod(rendered: tuple[str, list[dict]]) -> None:
    tid, objs = rendered
    tpl = _service(objs)
    spec = tpl["spec"]
    (c,) = spec["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env["SMM_ENV"]["value"] == "production" and env["SMM_LOCK"]["value"] == "/app/lock/models.lock"
    assert env["HF_HUB_OFFLINE"]["value"] == "1"
    # threads = the CPU request (settings.num_threads <- SMM_NUM_THREADS wins over cpu.py's quota sizing)
    ref = env["SMM_NUM_THREADS"]["valueFrom"]["resourceFieldRef"]
    assert ref["resource"] == "requests.cpu" and ref["containerName"] == c["name"] and ref["divisor"] == "1"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    # read-only model mount, on the volume and on the mount, in every container
    models = next(v for v in spec["volumes"] if v["name"] == "models")
    if tid in NO_JOB:  # an image volume is read-only by construction
        assert set(models) == {"name", "image"}, models
    else:
        assert models["persistentVolumeClaim"]["readOnly"] is True
    for where, cc in all_containers(spec):
        m = next(m for m in cc["volumeMounts"] if m["mountPath"] == "/app/models")
        assert m["readOnly"] is True, where
    # shutdown: grace > preStop + uvicorn's 30 s drain
    pre = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert spec["terminationGracePeriodSeconds"] > pre + 30
    ann = tpl["metadata"]["annotations"]
    port = next(p for p in c["ports"] if p["name"] == "http")["containerPort"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == str(port)
    assert ann["prometheus.io/path"] == "/metrics"
    assert c["command"][:3] == ["smm", "serve", "sentiment"] and str(port) in c["command"]


def test_probes_point_at_real_routes_and_ports(rendered: tuple[str, list[dict]]) -> None:
    from smart_model_manager.service.app import create_app

    def no_load(name: str) -> Any:
        raise AssertionError("not loaded here")

    routes = {getattr(r, "path", None) for r in create_app("finbert-demo", loader=no_load).routes}
    tid, objs = rendered
    tpl = _service(objs)
    ann = tpl["metadata"]["annotations"]
    assert ann["prometheus.io/path"] in routes
    (c,) = tpl["spec"]["containers"]
    ports = {p["name"] for p in c["ports"]} | {p["containerPort"] for p in c["ports"]}
    assert c["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] in routes and get["port"] in ports, (probe, get)
    for svc in objects(objs, "Service").values():
        sel = svc["spec"]["selector"]
        owners = [o for o in objs if (t := o.get("spec", {}).get("template")) and
                  sel.items() <= t["metadata"]["labels"].items()]
        assert owners, svc
        names = {p["name"] for o in owners for cc in o["spec"]["template"]["spec"]["containers"] for p in cc["ports"]}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= names, svc
    for np in objects(objs, "NetworkPolicy").values():
        assert np["spec"]["policyTypes"] == ["Ingress"]
        (rule,) = np["spec"]["ingress"]
        assert "from" not in rule or rule["from"], np
        assert [p["port"] for p in rule["ports"]] in (["http"], ["mirror"]), np


def _cli_options(argv: list[str]) -> tuple[Any, set[str]]:
    from smart_model_manager.cli.main import cli

    cmd: Any = cli
    words = argv[1:]
    while words and not words[0].startswith("-") and hasattr(cmd, "get_command"):
        sub = cmd.get_command(None, words[0])
        assert sub is not None, f"`smm {words[0]}` does not exist ({argv})"
        cmd, words = sub, words[1:]
    opts = {o for p in cmd.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
    return cmd, opts


def test_every_smm_command_in_the_manifests_exists_in_the_cli(rendered: tuple[str, list[dict]]) -> None:
    """Init containers, Job containers, mirror: each `smm ...` argv names a real command and real options."""
    tid, objs = rendered
    pending = []
    for where, spec in pod_specs(objs):
        for cname, c in all_containers(spec):
            argv = c.get("command") or []
            if argv[:1] == ["/bin/sh"]:  # the node-cache loop: check the smm command inside it
                argv = argv[2].split(";")[0].removeprefix("while ").split()
            if argv[:1] != ["smm"]:
                continue
            _, opts = _cli_options(argv)
            missing = {w for w in argv if w.startswith("--")} - opts
            if missing <= {"--wait", "--timeout"} and argv[1] == "validate" and missing:
                pending.append(f"{where} {cname}: {sorted(missing)}")
            else:
                assert not missing, (where, cname, argv, missing)
    if pending:
        pytest.skip("`smm validate --wait --timeout` is issue 8 §3 (built by another helper), "
                    f"not on this branch yet: {pending}")


def test_the_init_container_gates_on_this_pods_lock(rendered: tuple[str, list[dict]]) -> None:
    tid, objs = rendered
    spec = _service(objs)["spec"]
    (init,) = spec["initContainers"]
    assert init["command"][:2] == ["smm", "validate"] and "--wait" in init["command"]
    args = init["command"]
    assert args[args.index("--lock") + 1] == "/app/lock/models.lock" and args[args.index("--dir") + 1] == "/app/models"
    assert int(args[args.index("--timeout") + 1]) > 0


def test_no_inline_secrets(rendered: tuple[str, list[dict]]) -> None:
    tid, objs = rendered
    assert not objects(objs, "Secret"), "Secrets are created by the user, never shipped"
    secretish = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|CREDENTIAL", re.I)
    for where, spec in pod_specs(objs):
        for cname, c in all_containers(spec):
            for e in c.get("env") or []:
                if secretish.search(e["name"]):
                    assert "value" not in e and "secretKeyRef" in e.get("valueFrom", {}), (where, cname, e)
            argv = " ".join(c.get("command", []) + c.get("args", []))
            assert "--token " not in argv and "hf_" not in argv, (where, cname, argv)


def test_the_job_is_bounded_and_provisions_with_smm_pull(rendered: tuple[str, list[dict]]) -> None:
    tid, objs = rendered
    if tid in NO_JOB:
        assert not objects(objs, "Job") and not objects(objs, "PersistentVolumeClaim"), tid
        return
    job = objects(objs, "Job")["provision-models"]["spec"]
    assert job["backoffLimit"] >= 1 and job["activeDeadlineSeconds"] > 0 and job["ttlSecondsAfterFinished"] > 0
    spec = job["template"]["spec"]
    assert spec["restartPolicy"] in ("Never", "OnFailure")
    (pull,) = spec["initContainers"]
    assert pull["command"][:4] == ["smm", "pull", "--target", "/app/models"]
    (verify,) = spec["containers"]
    assert verify["command"][:3] == ["smm", "validate", "--full"]
    env = {e["name"]: e for e in pull["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert env["SMM_ENV"]["value"] != "production"


def test_overlays_differ_where_they_should() -> None:
    dev, prod = render(K3S / "overlays" / "dev"), render(K3S / "overlays" / "prod")
    assert objects(dev, "Deployment")["sentiment-analyzer"]["spec"]["replicas"] == 1
    p = objects(prod, "Deployment")["sentiment-analyzer"]["spec"]
    assert p["replicas"] >= 2
    assert p["strategy"]["rollingUpdate"]["maxUnavailable"] == 0  # old pods serve until new ones are ready
    anti = p["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert objects(prod, "PodDisruptionBudget")["sentiment-analyzer"]["spec"]["minAvailable"] >= 1
    hpa = objects(prod, "HorizontalPodAutoscaler")["sentiment-analyzer"]["spec"]
    assert hpa["minReplicas"] >= 2 and hpa["metrics"][0]["resource"]["name"] == "cpu"
    for where, spec in pod_specs(prod):
        for _cname, c in all_containers(spec):
            assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), ("prod pins images by digest", where, c["image"])
    for where, spec in pod_specs(dev):
        for _cname, c in all_containers(spec):
            assert not c["image"].endswith(":latest") and ":" in c["image"], (where, c["image"])


def test_multi_node_layouts() -> None:
    rwx = render(_folder(Path(__import__("tempfile").mkdtemp()), K3S / "overlays" / "prod", [K3S / "components" / "rwx"]))
    assert objects(rwx, "PersistentVolumeClaim")["models"]["spec"]["accessModes"] == ["ReadWriteMany"]
    tmp = Path(__import__("tempfile").mkdtemp())
    nc = render(_folder(tmp, K3S / "overlays" / "prod", [K3S / "components" / "mirror", K3S / "components" / "node-cache"]))
    ds = objects(nc, "DaemonSet")["smm-node-cache"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in ds["initContainers"][0]["env"]}
    assert env["HF_ENDPOINT"]["value"] == "http://smm-mirror:8080"
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "smm-mirror-token"
    svc = _service(nc)["spec"]
    models = next(v for v in svc["volumes"] if v["name"] == "models")
    assert models["persistentVolumeClaim"] == {"claimName": "models-node-cache", "readOnly": True}
    mirror_tpl = objects(nc, "Deployment")["smm-mirror"]["spec"]["template"]
    mirror = mirror_tpl["spec"]
    assert "--token-file" in mirror["containers"][0]["command"]
    assert next(v for v in mirror["volumes"] if v["name"] == "models")["persistentVolumeClaim"]["readOnly"] is True
    # HTTP probes on the mirror's own routes (tests/integration/test_mirror_limits.py checks they answer
    # without the token), and the scrape annotations on its /metrics.
    (c,) = mirror["containers"]
    ports = {p["name"] for p in c["ports"]} | {p["containerPort"] for p in c["ports"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert all(c[p]["httpGet"]["port"] in ports and "tcpSocket" not in c[p] for p in ("readinessProbe", "livenessProbe"))
    ann = mirror_tpl["metadata"]["annotations"]
    assert ann["prometheus.io/path"] == "/metrics" and int(ann["prometheus.io/port"]) in ports


def test_ci_workflow() -> None:
    """Actions pinned by commit SHA, checkouts without persisted credentials, a job that renders and validates
    the manifests, the model cache keyed on models.lock, and every `smm` step naming real options."""
    import shlex

    from _k8s_policy import REPO

    path = REPO / ".github" / "workflows" / "ci.yml"
    wf = yaml.safe_load(path.read_text())
    jobs = wf["jobs"]
    for name, job in jobs.items():
        for step in job["steps"]:
            uses = step.get("uses")
            if uses:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), (name, uses)
            if uses and uses.startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
            assert "${{" not in step.get("run", ""), ("no expression injection in run:", name, step)
    manifests = " ".join(s.get("run", "") for s in jobs["manifests"]["steps"])
    assert "kubectl kustomize" in manifests and "kubernetes-validate --strict" in manifests
    assert "tests/unit/test_deploy_k3s.py" in manifests
    cache = next(s for s in jobs["integration"]["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert "hashFiles('models.lock')" in cache["with"]["key"]
    runs = [s.get("run", "") for s in jobs["integration"]["steps"]]
    assert "smm lock --check" in runs
    for r in runs:
        if r.startswith("smm "):
            _, opts = _cli_options(shlex.split(r))
            assert {w for w in shlex.split(r)[2:] if w.startswith("--")} <= opts, r
    zizmor = Path(sys.executable).with_name("zizmor")
    if zizmor.exists():
        proc = subprocess.run([str(zizmor), "--offline", str(path)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_volume_layout_is_pinned_read_only_and_keeps_the_init_container(tmp_path: Path) -> None:
    prod = render(K3S / "overlays" / "prod")
    img = render(_folder(tmp_path, K3S / "overlays" / "prod", [K3S / "components" / "image-volume"]))
    spec = _service(img)["spec"]
    (vol,) = [v for v in spec["volumes"] if v["name"] == "models"]
    assert vol["image"]["pullPolicy"] == "IfNotPresent"
    assert image_volume_violations(spec) == []
    for _where, c in all_containers(spec):
        m = next(m for m in c["volumeMounts"] if m["name"] == "models")
        assert m == {"name": "models", "mountPath": "/app/models", "readOnly": True}
    # the same gate, hashing every file: a registry, not our Job, delivered the bytes
    (init,) = spec["initContainers"]
    (prod_init,) = _service(prod)["spec"]["initContainers"]
    assert init["command"] == [("--full" if w == "--quick" else w) for w in prod_init["command"]]
    assert {k: v for k, v in init.items() if k != "command"} == {k: v for k, v in prod_init.items() if k != "command"}
    assert not objects(img, "Job") and not objects(img, "PersistentVolumeClaim")
    assert not restricted_violations(spec)


def test_the_policy_refuses_an_image_volume_pinned_by_tag(tmp_path: Path) -> None:
    copy = tmp_path / "k3s"
    shutil.copytree(K3S, copy)
    comp = copy / "components" / "image-volume" / "kustomization.yaml"
    text = comp.read_text()
    ref = re.search(r"reference: (\S+)", text).group(1)  # type: ignore[union-attr]
    comp.write_text(text.replace(ref, "registry.example.com/smm-models:v2"))
    spec = _service(render(_folder(tmp_path / "r", copy / "overlays" / "prod", [copy / "components" / "image-volume"])))["spec"]
    problems = image_volume_violations(spec)
    assert len(problems) == 1 and "not pinned by digest" in problems[0] and ":v2" in problems[0]
    spec["volumes"][0]["image"]["pullPolicy"] = "Always"
    spec["containers"][0]["volumeMounts"][0]["readOnly"] = False
    assert len(image_volume_violations(spec)) == 3


# Kubernetes' recommended labels.
RECOMMENDED = ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/instance",
               "app.kubernetes.io/version", "app.kubernetes.io/part-of")


def test_every_object_and_pod_carries_the_recommended_labels(rendered: tuple[str, list[dict]]) -> None:
    from smart_model_manager._version import __version__

    tid, objs = rendered
    for o in objs:
        labels = o["metadata"].get("labels") or {}
        if o["kind"] == "Namespace":
            continue
        missing = [k for k in RECOMMENDED if k not in labels]
        assert not missing, (tid, o["kind"], o["metadata"]["name"], missing)
        assert labels["app.kubernetes.io/version"] == __version__, (tid, o["kind"], labels)
        template = (o.get("spec") or {}).get("template")
        if template is not None:
            tlabels = template["metadata"]["labels"]
            assert all(k in tlabels for k in RECOMMENDED), (tid, o["kind"], tlabels)
        for selector in _selectors(o):  # selectors are immutable: instance and version must stay out
            assert not {"app.kubernetes.io/version", "app.kubernetes.io/instance"} & set(selector), (tid, selector)


def _selectors(o: dict) -> list[dict]:
    spec = o.get("spec") or {}
    found = [spec.get("selector", {}).get("matchLabels", {}) if isinstance(spec.get("selector"), dict) else {}]
    if o["kind"] == "Service":
        found.append(spec.get("selector") or {})
    return [f for f in found if f]


def test_instance_label_names_the_overlay() -> None:
    for overlay, instance in (("dev", "smm-dev"), ("prod", "smm-prod")):
        objs = render(K3S / "overlays" / overlay)
        assert {o["metadata"]["labels"]["app.kubernetes.io/instance"] for o in objs
                if o["kind"] != "Namespace"} == {instance}


def test_the_service_monitor_scrapes_the_service_and_keeps_the_annotations(tmp_path: Path) -> None:
    objs = render(_folder(tmp_path, K3S / "overlays" / "prod", [K3S / "components" / "service-monitor"]))
    monitor = objects(objs, "ServiceMonitor")["sentiment-analyzer"]
    service = objects(objs, "Service")["sentiment-analyzer"]
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"
    annotations = objects(objs, "Deployment")["sentiment-analyzer"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]


def test_crd_schemas_catch_a_misplaced_field() -> None:
    from _crd_schemas import custom_violations

    monitor = yaml.safe_load((K3S / "components" / "service-monitor" / "servicemonitor-sentiment-analyzer.yaml")
                             .read_text())
    assert custom_violations(monitor) == []
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    assert any("intervall" in v for v in custom_violations(monitor))
    monitor["spec"]["endpoints"][0].pop("intervall")
    monitor["spec"]["endpoints"][0]["interval"] = "thirty seconds"
    assert any("interval" in v for v in custom_violations(monitor))


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_overlays_serve_two_models_from_one_lock(overlay: str) -> None:
    """One pod, two routes (crypto, stock): the service config the pod gets parses into two routes named
    after the keyword detector's markets, each naming a model the one lock pins (the init container's
    `smm validate --lock` then checks both)."""
    from smart_model_manager.formats.lockfile import loads as load_lock
    from smart_model_manager.service.config import ServiceConfig

    objs = render(K3S / "overlays" / overlay)
    (c,) = _service(objs)["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in c["env"] if "value" in e}
    assert "SMM_SERVICE_MODEL" not in env  # exclusive with MODELS
    config = ServiceConfig.from_env({k: v for k, v in env.items() if k.startswith("SMM_SERVICE_")})
    routes = config.routes()
    assert [r.name for r in routes] == ["crypto", "stock"]
    lock = load_lock((K3S / "base" / "models.lock").read_text())
    for r in routes:
        assert lock.find(r.model) is not None, f"{r.name}={r.model} is not pinned by base/models.lock"


def test_the_queue_depth_hpa_keeps_the_cpu_rule_and_scales_on_a_metric_the_service_exports() -> None:
    from smart_model_manager.service.metrics import ServiceMetrics

    objs = render(_folder(Path(__import__("tempfile").mkdtemp()), K3S / "overlays" / "prod",
                          [K3S / "components" / "hpa-queue"]))
    hpa = objects(objs, "HorizontalPodAutoscaler")["sentiment-analyzer"]
    kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert kinds["Resource"]["resource"]["name"] == "cpu"
    name = kinds["Pods"]["pods"]["metric"]["name"]
    exported = {m.name for m in ServiceMetrics().registry.collect()}
    assert name in exported, (name, exported)
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300  # prod's rule kept
