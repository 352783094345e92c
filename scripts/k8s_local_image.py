"""`scripts/k8s-local.sh check`, models as OCI images: the image-volume component with real containers.

Called by k8s_local_check.py after the volume layouts. Against the registry `up` started (Debian's
docker-registry on 127.0.0.1): build the demo model's image with `smm image build`, push it with `smm image
push` (digest kept), pull and mount it as the node would (`podman pull`, `podman image mount`; translation 15
of k8s_podman.py), play prod + image-volume: 2 replicas serve from the read-only image, with no PVC and no
Job. Then a rollout to v2 (new pods serve it; only the changed layers are pulled), a rollback to v1's digest,
and a tampered layer pushed under v1's tag, which the init container refuses, naming the file.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

from k8s_local_check import CheckFailed, Run, expect, ok, podman, wait_ready


def smm_json(run: Run, *args: str) -> dict[str, Any]:
    proc = subprocess.run([run.smm, *args, "--json"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise CheckFailed(f"smm {' '.join(args)} failed: {proc.stderr.strip()[-1500:]}")
    return json.loads(proc.stdout)


BLOB_GET = re.compile(r'"GET /v2/[^ ]+/blobs/(sha256:[0-9a-f]{64}) HTTP/[0-9.]+" 200 (\d+) "[^"]*" "containers/')


def pull_and_mount(run: Run, ref: str) -> tuple[str, dict[str, int]]:
    """`podman pull` (as the kubelet would) then `podman image mount`. Returns the mount path and the
    blobs podman fetched (digest -> bytes), read from the registry's access log: podman 4.3 without a
    terminal prints no "skipped: already exists", the registry's log says what went over the wire."""
    log = run.state / "logs" / "registry.log"
    start = log.stat().st_size
    podman("pull", "--tls-verify=false", ref)
    with log.open("rb") as f:
        f.seek(start)
        fetched = {m[1]: int(m[2]) for m in BLOB_GET.finditer(f.read().decode(errors="replace"))}
    path = podman("image", "mount", ref).stdout.strip()
    expect(Path(path, "model-metadata.yaml").is_file(), f"{ref}: the mounted image has no model-metadata.yaml")
    return path, fetched


def play_image(run: Run, rev: str, lock: Path, ref: str, path: str, port: int) -> None:
    shutil.rmtree(run.state / rev, ignore_errors=True)
    (run.state / rev).mkdir()
    shutil.copy(lock, run.state / rev / "models.lock")
    run.sh_env({"MODEL_IMAGE": ref, "IMAGE_MOUNTS": f"{ref}={path}"}, "render", rev, str(port), "image-volume")
    rendered = (run.state / rev / "rendered.yaml").read_text()
    expect("kind: Job" not in rendered and "kind: PersistentVolumeClaim" not in rendered,
           f"{rev}: the image-volume layout renders no Job and no PVC")
    run.sh("play", rev, "deployments")


def tamper(src: Path, dest: Path) -> str:
    """A copy of the layout whose biggest layer has one byte flipped in its file's data, with digests,
    config and manifest recomputed (a well-formed image, other bytes). Returns the file's path in the image."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest)
    blobs = dest / "blobs" / "sha256"
    index = json.loads((dest / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"][7:]).read_text())
    i, layer = max(enumerate(manifest["layers"]), key=lambda x: x[1]["size"])
    old = blobs / layer["digest"][7:]
    data = bytearray(old.read_bytes())
    with tarfile.open(old) as tar:
        member = next(m for m in tar.getmembers() if m.isfile())
    data[member.offset_data + member.size // 2] ^= 0x01
    new = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / new[7:]).write_bytes(bytes(data))
    old.unlink()
    manifest["layers"][i]["digest"] = new
    config["rootfs"]["diff_ids"][i] = new

    def put(doc: dict[str, Any]) -> tuple[str, int]:
        raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        (blobs / digest[7:]).write_bytes(raw)
        return digest, len(raw)

    manifest["config"]["digest"], manifest["config"]["size"] = put(config)
    index["manifests"][0]["digest"], index["manifests"][0]["size"] = put(manifest)
    (dest / "index.json").write_text(json.dumps(index))
    return member.name


def image_volume(run: Run) -> None:
    port_file = run.state / "registry.port"
    if not port_file.exists():
        print("SKIP models as OCI images: no registry (apt-get install -y docker-registry skopeo)", flush=True)
        return
    repo = f"127.0.0.1:{port_file.read_text().strip()}/{run.prefix}-models"
    hub, img = run.state / "hub", run.state / "img"
    locks = {"v1": run.state / "v1" / "models.lock", "v2": run.state / "v2" / "models.lock"}
    expect(locks["v2"].exists(), "the image rollout needs the second release the volume rollout made (v2)")
    built, pushed, refs, paths = {}, {}, {}, {}
    for v in ("v1", "v2"):
        built[v] = smm_json(run, "image", "build", "--lock", str(locks[v]), "--from", str(hub),
                            "--output", str(img / v), "--tag", v)
        pushed[v] = smm_json(run, "image", "push", str(img / v), f"{repo}:{v}", "--plain-http")
        expect(pushed[v]["digest"] == built[v]["digest"], f"{v}: pushed {pushed[v]['digest']} != built {built[v]['digest']}")
        refs[v] = f"{repo}@{built[v]['digest']}"
    ok(f"model image v1 {built['v1']['digest'][:19]}: {len(built['v1']['layers'])} layers, "
       f"{built['v1']['size'] / 1e6:.1f} MB, built in {built['v1']['seconds']:.1f}s; pushed to the registry, digest kept")
    ok(f"model image v2: {pushed['v2']['blobs_skipped']} blob(s) already in the registry, "
       f"{pushed['v2']['bytes_uploaded']} bytes uploaded")
    # what a node moves for v2 once it has v1: measured with `smm image pull` into one node-local layout
    node = run.state / "node-layout"
    shutil.rmtree(node, ignore_errors=True)
    smm_json(run, "image", "pull", refs["v1"], str(node), "--plain-http")
    moved = smm_json(run, "image", "pull", refs["v2"], str(node), "--plain-http")
    ok(f"bytes pulled for v2 after v1: {moved['bytes_downloaded']} downloaded, {moved['bytes_reused']} reused "
       f"({moved['blobs_downloaded']} blob(s) of {moved['blobs_downloaded'] + moved['blobs_reused']})")
    paths["v1"], first = pull_and_mount(run, refs["v1"])
    expect(sum(first.values()) >= built["v1"]["size"], f"podman pulled {sum(first.values())} bytes of v1's "
                                                         f"{built['v1']['size']}: the registry log is not read right")
    # the translation's podman equivalent, run as such: the image mounted read-only at /app/models
    lock_dir = run.state / "img-lock"
    lock_dir.mkdir(exist_ok=True)
    shutil.copy(locks["v1"], lock_dir / "models.lock")
    direct = podman("run", "--rm", "--network", "none", "--mount",
                    f"type=image,source={refs['v1']},destination=/app/models,rw=false",
                    "-v", f"{lock_dir}:/app/lock:ro", "--entrypoint", "smm", run.image,
                    "validate", "--full", "--dir", "/app/models", "--lock", "/app/lock/models.lock", check=False)
    expect(direct.returncode == 0 and direct.stdout.startswith("OK"),
           f"podman run --mount type=image: {direct.stdout[-500:]} {direct.stderr[-800:]}")
    ok("podman run --mount type=image,source=<v1 digest>,destination=/app/models,rw=false: validates (full) against the lock")
    signed_lock_in_container(run, refs["v1"], locks["v1"])
    base = run.base_port + 30
    play_image(run, "img-v1", locks["v1"], refs["v1"], paths["v1"], base)
    run.released("img-v1")
    run.serving("img-v1", run.commit_of("v1"))
    read_only(run, "img-v1", paths["v1"])
    ok("image-volume: 2 replicas serve v1 from the image, read-only, with no PVC and no provisioning Job")
    paths["v2"], fetched = pull_and_mount(run, refs["v2"])
    pulled = sum(fetched.values())
    expect(pulled == moved["bytes_downloaded"], f"podman pulled {pulled} bytes for v2 ({fetched}), smm image pull "
                                                f"{moved['bytes_downloaded']}: only the changed layers should move")
    play_image(run, "img-v2", locks["v2"], refs["v2"], paths["v2"], base + 2)
    run.released("img-v2")
    run.serving("img-v2", run.commit_of("v2"))
    run.serving("img-v1", run.commit_of("v1"))
    ok(f"rollout by digest: new pods serve v2, old pods keep v1; podman pulled {pulled} bytes for v2 "
       f"({len(fetched)} blob(s), the registry's access log) of {built['v2']['size']}")
    play_image(run, "img-rollback", locks["v1"], refs["v1"], paths["v1"], base + 4)
    expect(run.play_json("img-rollback")["lock_configmap"] == run.play_json("img-v1")["lock_configmap"],
           "rolling back gives v1's ConfigMap name again")
    run.released("img-rollback")
    run.serving("img-rollback", run.commit_of("v1"))
    ok("rollback: the previous digest and lock, new pods serve v1's exact bytes")
    tampered_tag(run, repo, img, locks["v1"], base + 6)


def _keypair(where: Path, name: str) -> Path:
    """An approver's EC key pair; returns the public key (the private one stays on this host)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    (where / f"{name}.key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub = where / "public" / f"{name}.pub.pem"
    pub.parent.mkdir(exist_ok=True)
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return pub


def signed_lock_in_container(run: Run, ref: str, lock: Path) -> None:
    """The init container's signature gate, in the runtime image: `smm validate --verify-signature` accepts
    the lock signed by the approver's key and refuses, with one line, the same signature under another key
    and a lock changed after signing; nothing on the mounts changes."""
    where = run.state / "img-sign"
    shutil.rmtree(where, ignore_errors=True)
    (where / "lock").mkdir(parents=True)
    approver, other = _keypair(where, "approver"), _keypair(where, "other")
    shutil.copy(lock, where / "lock" / "models.lock")
    proc = subprocess.run([run.smm, "sign", "--lock", str(where / "lock" / "models.lock"),
                           "--key", str(where / "approver.key.pem")], capture_output=True, text=True, timeout=300)
    expect(proc.returncode == 0, f"smm sign failed: {proc.stderr[-800:]}")
    tampered = where / "tampered"
    shutil.copytree(where / "lock", tampered)
    with (tampered / "models.lock").open("a") as f:
        f.write("# edited after signing\n")
    before = {p: p.read_bytes() for p in sorted(where.rglob("*")) if p.is_file()}

    def gate(lock_dir: Path, key: Path) -> subprocess.CompletedProcess[str]:
        return podman("run", "--rm", "--network", "none", "--read-only", "--mount",
                      f"type=image,source={ref},destination=/app/models,rw=false",
                      "-v", f"{lock_dir}:/app/lock:ro", "-v", f"{key.parent}:/app/keys:ro",
                      "-e", f"SMM_SIGNATURE_PUBLIC_KEYS=/app/keys/{key.name}", "--entrypoint", "smm", run.image,
                      "validate", "--dir", "/app/models", "--lock", "/app/lock/models.lock", check=False)

    good = gate(where / "lock", approver)
    expect(good.returncode == 0 and "signature OK" in good.stderr and good.stdout.startswith("OK"),
           f"a lock signed by the approver is refused in the runtime image: {good.stdout[-300:]} {good.stderr[-800:]}")
    refusals = []
    for what, lock_dir, key in (("another key", where / "lock", other), ("a lock edited after signing", tampered,
                                                                          approver)):
        bad = gate(lock_dir, key)
        lines = [ln for ln in bad.stderr.splitlines() if ln.strip() and not ln.startswith(("lock: ", "(set SMM_DEBUG"))]
        expect(bad.returncode == 1 and len(lines) == 1 and "OK" not in bad.stdout,
               f"{what}: expected one refusal line and exit 1, got {bad.returncode}: {bad.stdout[-300:]} {bad.stderr[-800:]}")
        refusals.append(f"{what}: {lines[0][:120]}")
    after = {p: p.read_bytes() for p in sorted(where.rglob("*")) if p.is_file()}
    expect(before == after, "a signature check changed files on its mounts")
    ok("signed lock in the runtime image (SMM_SIGNATURE_PUBLIC_KEYS): accepted with the approver's key; refused: "
       + "; ".join(refusals))


def read_only(run: Run, rev: str, path: str) -> None:
    for pod in run.play_json(rev)["deployments"]:
        ctr = f"{pod}-sentiment-analyzer"
        w = podman("exec", ctr, "touch", "/app/models/intruder", check=False)
        expect(w.returncode != 0 and "Read-only file system" in w.stderr, f"{ctr}: /app/models is writable")
        mounts = json.loads(podman("inspect", "-f", "{{json .Mounts}}", ctr).stdout)
        m = next(x for x in mounts if x.get("Destination") == "/app/models")
        expect(m.get("Source") == path and not m.get("RW", True), f"{ctr}: /app/models is {m}, expected {path} read-only")


def tampered_tag(run: Run, repo: str, img: Path, lock: Path, port: int) -> None:
    name = tamper(img / "v1", img / "tampered")
    bad = smm_json(run, "image", "push", str(img / "tampered"), f"{repo}:v1", "--plain-http")
    ref = f"{repo}:v1"
    path, _ = pull_and_mount(run, ref)
    rel = name.rsplit("/blobs/", 1)[-1]
    play_image(run, "img-tamper", lock, ref, path, port)
    (pod,) = list(run.play_json("img-tamper")["deployments"])[:1]
    deadline, logs = time.monotonic() + 120, ""
    while time.monotonic() < deadline and "sha256" not in logs:
        time.sleep(2)
        out = podman("logs", f"{pod}-wait-for-models", check=False)
        logs = out.stdout + out.stderr
    expect("sha256" in logs and rel[:12] in logs, f"{pod}: the init container did not name the tampered file: {logs[-1200:]}")
    line = next(ln for ln in logs.splitlines() if rel[:12] in ln)
    for p, p_port in run.play_json("img-tamper")["deployments"].items():
        expect(not wait_ready(p_port, 5), f"{p}: ready on a tampered image")
        state = podman("inspect", "-f", "{{.State.Status}}", f"{p}-sentiment-analyzer", check=False).stdout.strip()
        expect(state != "running", f"{p}: the server runs on a tampered image")
    ok(f"tampered layer pushed under the same tag ({bad['digest'][:19]}): pods never ready; init container: {line.strip()[:300]}")
