"""Translate rendered Kubernetes YAML (`kubectl kustomize deploy/k3s/overlays/dev`) into what
`podman kube play` 4.3 runs faithfully on one machine. Used by scripts/k8s-local.sh; tested by
tests/unit/test_k8s_podman.py.

Everything a pod runs (image, command, env, mounts, securityContext, resources, init containers) is taken
from the rendered YAML unchanged, except for these translations, one per gap of podman 4.3
(docs/kubernetes.md, "Running the manifests with podman"):

1. **Job -> Pod.** podman ignores Jobs. The Job's pod template runs as a Pod with ``restartPolicy: Never``.
2. **Deployment -> one Pod per replica.** Each replica is its own Pod (``NAME-0``, ``NAME-1``...) so each
   gets its own port; podman would give every replica the same host port and the second would fail.
3. **Host networking, 127.0.0.1 only.** podman publishes a containerPort without hostPort on 0.0.0.0. Every
   Pod runs with ``hostNetwork: true`` and no ``ports``; ``smm serve``'s ``--host`` becomes 127.0.0.1 and
   its ``--port`` the replica's own port (``base_port + i``). Nothing is published on any other address.
4. **Per-pod emptyDir names.** podman turns ``emptyDir`` into a named volume shared by every pod using the
   same name; each Pod's emptyDirs are renamed ``<pod>-<volume>``.
5. **The PVC is played once**, apart from the pods (a second play fails with "volume already exists"), and
   claim names get a prefix so a run never touches another run's volume.
6. **Probes are removed.** podman ignores startup/readiness probes and turns an httpGet liveness probe into a
   curl health check (no curl in the image). The host polls ``/readyz`` and ``/healthz`` instead, as the
   kubelet would.
7. **Dropped objects:** Service, NetworkPolicy, PodDisruptionBudget, HorizontalPodAutoscaler and Namespace
   have no podman equivalent (podman ignores them); ConfigMaps are passed with ``--configmap``, one file each.
8. **Images** are mapped to the locally built tag with ``imagePullPolicy: Never`` (no registry here).
10. **ConfigMap names get the claim prefix.** podman keeps each ``--configmap`` as a named volume of the
   ConfigMap's name, so two runs with the same lock (same hashed name) would share, and remove, one volume.
   Every reference (configMap volumes, ``configMapKeyRef``) is renamed with it; the JSON output still names
   the lock's ConfigMap as kustomize rendered it.
11. **DaemonSet -> one Pod** (``NAME-node0``): this machine is the one node. ``restartPolicy: OnFailure``, as
   for Deployment pods.
12. **PersistentVolume dropped; its claim is a named volume.** A ``hostPath`` PersistentVolume (the node-cache
   component's node-local directory) is one directory per node; on one node, the named volume of the claim
   that binds it is that directory. ``volumeName`` is dropped from the claim.
13. **Secrets the run provides (``--secret NAME``) become ConfigMaps.** podman 4.3 crashes on a ``secret``
   volume without ``optional``, serves its data still base64-encoded, and reads ``secretKeyRef`` only from
   podman secrets in its own JSON shape; ConfigMaps work. Each ``secret`` volume and ``secretKeyRef`` of
   NAME becomes a ``configMap`` volume and ``configMapKeyRef`` of the prefixed ConfigMap NAME (the file
   and the variable the container sees are the same). Other secret references (optional ones, which
   podman skips when absent) stay as they are.
14. **Service names -> 127.0.0.1.** An env value ``http://SERVICE[.ns...]:PORT`` naming a rendered Service
   becomes ``http://127.0.0.1:<host port>`` of the first Pod the Service selects (cluster DNS does not exist
   here). ``smm mirror serve`` gets ``--host 127.0.0.1 --port <its own port>``, like ``smm serve``.
15. **Image volumes -> the image mounted by podman, as a read-only hostPath.** ``podman kube play`` 4.3
   refuses ``volumes[].image`` ("HostPath, ConfigMap, EmptyDir, and PersistentVolumeClaim are currently the
   only supported VolumeSource") and has no per-container ``--mount``. The run pulls the image and mounts
   it with ``podman image mount REF`` (the same read-only overlay of the image's layers that
   ``podman run --mount type=image,source=REF,destination=...,rw=false`` gives, which the check also runs);
   ``--image-mount REF=PATH`` maps each reference to that path, and the volume becomes a ``hostPath`` of
   it, mounted read-only (a mount that is not read-only is refused). A reference without a mapping is
   refused, never silently dropped.
9. **restartPolicy Always -> OnFailure** for Deployment pods. Under ``Always`` podman 4.3 restarts an init
   container that exited 0 and then fails to remove it ("cannot remove container ... as it is running"),
   so the pod never starts. A server never exits 0 on its own, so OnFailure restarts it like Always would.

Usage: ``python scripts/k8s_podman.py RENDERED.yaml OUTDIR --prefix P --image IMG --base-port N [--claim-prefix C]``
writes OUTDIR/pvc.yaml (and OUTDIR/pvc/CLAIM.yaml, one claim each), OUTDIR/{jobs,deployments,others,daemonsets}/POD.yaml (one Pod per file, played in parallel: podman
plays a file's pods one by one and blocks on each init container) and OUTDIR/configmaps/NAME.yaml (passed
to ``podman kube play --configmap``, one object per file) and prints the pod names, ports and the lock's ConfigMap name as JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

DROPPED = {"Service", "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Namespace"}
SUPPORTED = DROPPED | {"ConfigMap", "PersistentVolumeClaim", "PersistentVolume", "Job", "Deployment", "DaemonSet"}
SERVERS = {("smm", "serve", "sentiment"), ("smm", "mirror", "serve")}  # argv[:3] that get --host/--port
SERVICE_URL = re.compile(r"http://([a-z0-9][a-z0-9-]*)(?:\.[a-z0-9.-]+)?:(\d+)")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


class TranslationError(ValueError):
    """The rendered YAML holds something this adapter cannot translate faithfully."""


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def _set_flag(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    if flag in out:
        out[out.index(flag) + 1] = value
    else:
        out += [flag, value]
    return out


def pod_from_template(name: str, template: dict[str, Any], *, prefix: str, image: str,
                      restart_policy: str | None = None, port: int | None = None,
                      claim_prefix: str | None = None, secrets: frozenset[str] = frozenset(),
                      image_mounts: dict[str, str] | None = None) -> dict[str, Any]:
    """One podman-ready Pod from a pod template (translations 3, 4, 5, 6, 8, 13, 15)."""
    tpl = copy.deepcopy(template)
    spec = tpl["spec"]
    pod_name = f"{prefix}-{name}"
    spec["hostNetwork"] = True
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    renamed: dict[str, str] = {}
    for vol in spec.get("volumes") or []:
        if "emptyDir" in vol:
            renamed[vol["name"]] = f"{pod_name}-{vol['name']}"
            vol["name"] = renamed[vol["name"]]
        elif "persistentVolumeClaim" in vol:
            vol["persistentVolumeClaim"]["claimName"] = f"{claim_prefix or prefix}-{vol['persistentVolumeClaim']['claimName']}"
        elif "configMap" in vol:
            vol["configMap"]["name"] = f"{claim_prefix or prefix}-{vol['configMap']['name']}"
        elif "secret" in vol and vol["secret"].get("secretName") in secrets:
            sec = vol.pop("secret")
            vol["configMap"] = {"name": f"{claim_prefix or prefix}-{sec['secretName']}",
                                **{k: v for k, v in sec.items() if k in ("defaultMode", "items", "optional")}}
        elif "image" in vol:
            _image_volume(name, vol, spec, image_mounts or {})
        elif "secret" not in vol:
            raise TranslationError(f"{name}: volume {vol['name']} has a type this adapter does not translate")
    for c in _containers(spec):
        c["image"] = image
        c["imagePullPolicy"] = "Never"
        for m in c.get("volumeMounts") or []:
            m["name"] = renamed.get(m["name"], m["name"])
        for e in c.get("env") or []:
            source = e.get("valueFrom") or {}
            if (source.get("secretKeyRef") or {}).get("name") in secrets:
                source["configMapKeyRef"] = source.pop("secretKeyRef")
            ref = source.get("configMapKeyRef")
            if ref:
                ref["name"] = f"{claim_prefix or prefix}-{ref['name']}"
        for probe in PROBES:
            c.pop(probe, None)
        c.pop("ports", None)
        argv = c.get("command") or []
        if tuple(argv[:3]) in SERVERS:
            if port is None:
                raise TranslationError(f"{name}: a server container needs a port")
            c["command"] = _set_flag(_set_flag(argv, "--host", "127.0.0.1"), "--port", str(port))
    meta = {"name": pod_name, "labels": dict(tpl.get("metadata", {}).get("labels") or {})}
    if tpl.get("metadata", {}).get("annotations"):
        meta["annotations"] = dict(tpl["metadata"]["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _image_volume(name: str, vol: dict[str, Any], spec: dict[str, Any], mounts: dict[str, str]) -> None:
    ref = vol["image"]["reference"]
    if ref not in mounts:
        raise TranslationError(f"{name}: image volume {vol['name']} ({ref}) has no local mount; pull it, run "
                               f"`podman image mount {ref}` and pass --image-mount {ref}=PATH")
    for c in _containers(spec):
        for m in c.get("volumeMounts") or []:
            if m["name"] == vol["name"] and m.get("readOnly") is not True:
                raise TranslationError(f"{name}: {c['name']} mounts image volume {vol['name']} read-write; "
                                       "an image volume is read-only")
    del vol["image"]
    vol["hostPath"] = {"path": mounts[ref], "type": "Directory"}


def translate(objs: list[dict[str, Any]], *, prefix: str, image: str, base_port: int,
              claim_prefix: str | None = None, secrets: frozenset[str] = frozenset(),
              image_mounts: dict[str, str] | None = None) -> dict[str, Any]:
    """Rendered objects -> {"pvc": [...], "configmaps": [...], "jobs": [...], "deployments": [...],
    "others": [...], "daemonsets": [...], "ports": {pod: port}, "other_ports": {pod: port}}.
    ``deployments`` are the sentiment service's pods (what the checks call replicas), ``others`` every other
    Deployment's (the mirror). Unknown kinds are refused, not silently dropped. Pods are named
    ``<prefix>-<name>``, claims ``<claim_prefix>-<claim>`` (default: the same prefix; several renders
    share one volume by giving the same claim prefix)."""
    claim_prefix = claim_prefix or prefix
    out: dict[str, Any] = {"pvc": [], "configmaps": [], "jobs": [], "deployments": [], "others": [],
                           "daemonsets": [], "ports": {}, "other_ports": {}, "lock_configmap": None}
    port = base_port
    served: dict[tuple[str, str], int] = {}  # (Service name, Service port) -> host port of its first pod
    services = [o for o in objs if o.get("kind") == "Service"]
    for obj in objs:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind not in SUPPORTED:
            raise TranslationError(f"{kind}/{name}: no podman translation (supported: {sorted(SUPPORTED)})")
        if kind in DROPPED or kind == "PersistentVolume":
            continue
        if kind == "ConfigMap":
            out["configmaps"].append({"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": f"{claim_prefix}-{name}"},
                                      "data": dict(obj.get("data") or {})})
            if name.startswith("smm-models-lock"):
                out["lock_configmap"] = name
        elif kind == "PersistentVolumeClaim":
            pvc = copy.deepcopy(obj)
            pvc["metadata"] = {"name": f"{claim_prefix}-{name}"}
            pvc["spec"].pop("storageClassName", None)
            pvc["spec"].pop("volumeName", None)
            out["pvc"].append(pvc)
        elif kind == "Job":
            out["jobs"].append(pod_from_template(name, obj["spec"]["template"], prefix=prefix, image=image,
                                                 restart_policy="Never", claim_prefix=claim_prefix,
                                                 secrets=secrets))
        elif kind == "DaemonSet":
            out["daemonsets"].append(pod_from_template(f"{name}-node0", obj["spec"]["template"], prefix=prefix,
                                                       image=image, restart_policy="OnFailure",
                                                       claim_prefix=claim_prefix, secrets=secrets))
        elif kind == "Deployment":
            tpl = obj["spec"]["template"]
            group = "deployments" if _runs(tpl, ("smm", "serve")) else "others"
            for i in range(int(obj["spec"].get("replicas", 1))):
                pod = pod_from_template(f"{name}-{i}", tpl, prefix=prefix, image=image, port=port,
                                        claim_prefix=claim_prefix, restart_policy="OnFailure", secrets=secrets,
                                        image_mounts=image_mounts)
                out[group].append(pod)
                out["ports" if group == "deployments" else "other_ports"][pod["metadata"]["name"]] = port
                for svc in services:
                    if i == 0 and _selects(svc, tpl):
                        for sp in svc["spec"].get("ports") or []:
                            if _has_port(tpl, sp.get("targetPort", sp["port"])):
                                served[(svc["metadata"]["name"], str(sp["port"]))] = port
                port += 1
    for pod in out["jobs"] + out["deployments"] + out["others"] + out["daemonsets"]:
        for c in _containers(pod["spec"]):
            for e in c.get("env") or []:
                if isinstance(e.get("value"), str):
                    e["value"] = SERVICE_URL.sub(
                        lambda m: f"http://127.0.0.1:{served[(m[1], m[2])]}" if (m[1], m[2]) in served else m[0],
                        e["value"])
    return out


def _runs(template: dict[str, Any], argv0: tuple[str, str]) -> bool:
    return any(tuple((c.get("command") or [])[:2]) == argv0 for c in template["spec"].get("containers") or [])


def _selects(service: dict[str, Any], template: dict[str, Any]) -> bool:
    want = (service.get("spec") or {}).get("selector") or {}
    have = (template.get("metadata") or {}).get("labels") or {}
    return bool(want) and all(have.get(k) == v for k, v in want.items())


def _has_port(template: dict[str, Any], target: int | str) -> bool:
    return any(p.get("name") == target or p.get("containerPort") == target
               for c in template["spec"].get("containers") or [] for p in c.get("ports") or [])


def write(result: dict[str, Any], outdir: Path) -> dict[str, Any]:
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "pvc.yaml").write_text(yaml.safe_dump_all(result["pvc"], sort_keys=False))
    (outdir / "pvc").mkdir(exist_ok=True)  # one claim per file: play a new claim beside existing volumes
    for pvc in result["pvc"]:
        (outdir / "pvc" / f"{pvc['metadata']['name']}.yaml").write_text(yaml.safe_dump(pvc, sort_keys=False))
    # one file per Pod: `podman kube play` starts the pods of a file one after the other and blocks while an
    # init container runs, so a held first replica would keep the second from being created at all
    for key in ("jobs", "deployments", "others", "daemonsets"):
        (outdir / key).mkdir(exist_ok=True)
        for pod in result[key]:
            (outdir / key / f"{pod['metadata']['name']}.yaml").write_text(yaml.safe_dump(pod, sort_keys=False))
    cms = outdir / "configmaps"  # one file per ConfigMap: podman 4.3's --configmap reads one object per file
    cms.mkdir(exist_ok=True)
    for cm in result["configmaps"]:
        (cms / f"{cm['metadata']['name']}.yaml").write_text(yaml.safe_dump(cm, sort_keys=False))
    return {"jobs": [p["metadata"]["name"] for p in result["jobs"]],
            "deployments": result["ports"],
            "others": result["other_ports"],
            "daemonsets": [p["metadata"]["name"] for p in result["daemonsets"]],
            "volumes": [p["metadata"]["name"] for p in result["pvc"]],
            "lock_configmap": result["lock_configmap"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rendered", type=Path)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--base-port", type=int, required=True)
    ap.add_argument("--claim-prefix", default=None, help="prefix of claim names (default: --prefix)")
    ap.add_argument("--image-mount", action="append", default=[], metavar="REF=PATH",
                    help="where `podman image mount REF` mounted an image volume's reference (repeatable)")
    ap.add_argument("--secret", action="append", default=[],
                    help="a Secret this run provides as a ConfigMap of the same name (repeatable)")
    args = ap.parse_args(argv)
    objs = [d for d in yaml.safe_load_all(args.rendered.read_text()) if d]
    try:
        result = translate(objs, prefix=args.prefix, image=args.image, base_port=args.base_port,
                           claim_prefix=args.claim_prefix, secrets=frozenset(args.secret),
                           image_mounts=dict(m.split("=", 1) for m in args.image_mount))
    except TranslationError as e:
        print(f"k8s_podman: {e}", file=sys.stderr)
        return 1
    print(json.dumps(write(result, args.outdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
