"""`scripts/k8s-local.sh check`: what a user would check from outside a cluster, against the pods `up` played.

Stdlib only (it runs with the project's venv Python). Prints one line per check; exit 0 when all passed,
1 at the first failure (with what was expected and what came back). The rollout part (a second lock) is
driven from here too, through the same shell helpers `up` uses.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# Clear cases from the project's headline data; the labels must also equal the host's own prediction.
HEADLINES = {
    "Bitcoin crashes 20% after exchange hack wipes out reserves": "negative",
    "Ethereum ETF inflows hit a record as institutions pile in": "positive",
}
REPO_ID = "smart-model-manager/finbert-mini-demo"


class CheckFailed(AssertionError):
    pass


def ok(msg: str) -> None:
    print(f"ok   {msg}", flush=True)


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def http(port: int, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def wait_ready(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http(port, "/readyz", timeout=2)[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise CheckFailed(f"podman {' '.join(args)} failed: {proc.stderr.strip()[-800:]}")
    return proc


class Run:
    def __init__(self, args: argparse.Namespace):
        self.state: Path = args.state
        self.repo: Path = args.repo
        self.prefix: str = args.prefix
        self.mirror: str = args.mirror
        self.base_port: int = args.base_port
        self.skip_multi: str = args.skip_multi_commit
        self.smm = str(self.repo / ".venv" / "bin" / "smm")
        self.image: str = args.image
        self.py = str(self.repo / ".venv" / "bin" / "python")

    def play_json(self, rev: str) -> dict[str, Any]:
        return json.loads((self.state / rev / "play.json").read_text())

    def commit_of(self, rev: str) -> str:
        lock = (self.state / rev / "models.lock").read_text()
        line = next(ln for ln in lock.splitlines() if ln.strip().startswith("commit:"))
        return line.split(":", 1)[1].strip()

    def sh(self, *words: str) -> None:
        """Run one of k8s-local.sh's helpers (make_lock, render, play...) with this run's settings."""
        self.sh_env({}, *words)

    def sh_env(self, extra: dict[str, str], *words: str) -> None:
        env = {**os.environ, "STATE": str(self.state), "PREFIX": self.prefix, **extra}
        log = self.state / "logs" / f"check-{'-'.join(words)}.log"
        with log.open("w") as fh:
            proc = subprocess.run(["bash", str(self.repo / "scripts" / "k8s-local.sh"), "_helper", *words],
                                  stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=900)
        if proc.returncode != 0:
            raise CheckFailed(f"k8s-local.sh {' '.join(words)} failed: {log.read_text()[-1500:]}")

    # --- the checks -------------------------------------------------------------------------------------
    def serving(self, rev: str, commit: str) -> None:
        pods = self.play_json(rev)["deployments"]
        expect(len(pods) >= 1, f"{rev}: no service pods")
        want = host_labels(self.py, self.state, commit)
        for pod, port in pods.items():
            status, body = http(port, "/readyz")
            expect(status == 200, f"{pod}: /readyz {status} {body}")
            status, body = http(port, "/v1/models")
            expect(status == 200, f"{pod}: /v1/models {status} {body}")
            loaded = json.dumps(body)
            expect(commit in loaded, f"{pod}: serves {loaded}, expected commit {commit}")
            status, body = http(port, "/v1/sentiment", {"texts": list(HEADLINES)})
            expect(status == 200, f"{pod}: POST /v1/sentiment {status} {body}")
            labels = [r["label"] for r in body["results"]]
            expect(labels == list(HEADLINES.values()), f"{pod}: labels {labels}, expected {list(HEADLINES.values())}")
            expect(labels == want, f"{pod}: labels {labels} differ from the host's prediction {want}")
            ok(f"{pod} on 127.0.0.1:{port}: /readyz 200, commit {commit[:12]}, labels {labels}")
            self.two_routes(pod, port)

    def two_routes(self, pod: str, port: int) -> None:
        """The overlays serve two routes from one pod: a crypto and a stock headline, each routed by the
        keyword detector, must come back saying which route answered and why."""
        status, body = http(port, "/v1/models")
        names = [m["name"] for m in body["models"]]
        expect(names == ["crypto", "stock"], f"{pod}: /v1/models routes {names}, expected ['crypto', 'stock']")
        status, body = http(port, "/v1/analyze", {"items": [
            {"id": "c", "text": "Bitcoin ETF inflows hit a record"},
            {"id": "s", "text": "Apple earnings beat estimates on strong iPhone sales"}]})
        expect(status == 200, f"{pod}: POST /v1/analyze {status} {body}")
        got = [(it["id"], it["model"], it["route"]) for it in body["items"]]
        expect(got == [("c", "crypto", "detected"), ("s", "stock", "detected")],
               f"{pod}: routed {got}, expected crypto and stock, both detected")
        ok(f"{pod}: one pod, two routes: {got}")

    def hardening(self, rev: str) -> None:
        for pod in self.play_json(rev)["deployments"]:
            ctr = f"{pod}-sentiment-analyzer"
            uid = podman("exec", ctr, "id", "-u").stdout.strip()
            expect(uid == "10001", f"{ctr}: runs as uid {uid}, expected 10001")
            status = podman("exec", ctr, "cat", "/proc/1/status").stdout
            uids = next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1:]
            expect(set(uids) == {"10001"}, f"{ctr}: the server process has uids {uids}")
            for path in ("/app/models/intruder", "/intruder", "/opt/smm/intruder"):
                w = podman("exec", ctr, "touch", path, check=False)
                expect(w.returncode != 0 and "Read-only file system" in w.stderr,
                       f"{ctr}: writing {path} should fail with EROFS, got rc={w.returncode} {w.stderr.strip()}")
            caps = [ln.split()[1] for ln in status.splitlines() if ln.startswith(("CapEff:", "CapPrm:", "CapBnd:"))]
            expect(set(caps) == {"0000000000000000"}, f"{ctr}: capabilities left {caps} (drop: [ALL])")
            seccomp = next(ln for ln in status.splitlines() if ln.startswith("Seccomp:")).split()[1]
            expect(seccomp == "2", f"{ctr}: seccomp mode {seccomp}, expected 2 (filter: RuntimeDefault)")
            nnp = next(ln for ln in status.splitlines() if ln.startswith("NoNewPrivs:")).split()[1]
            expect(nnp == "1", f"{ctr}: NoNewPrivs {nnp} (allowPrivilegeEscalation: false)")
            threads = podman("exec", ctr, "printenv", "SMM_NUM_THREADS").stdout.strip()
            expect(threads == "1", f"{ctr}: SMM_NUM_THREADS={threads}, expected 1 (= requests.cpu)")
            w = podman("exec", ctr, "touch", "/tmp/allowed", check=False)
            expect(w.returncode == 0, f"{ctr}: /tmp must stay writable: {w.stderr.strip()}")
            ok(f"{ctr}: uid 10001, no capabilities, seccomp filter, no_new_privs, 1 thread (the CPU request); "
               "/app/models, / and /opt/smm read-only (EROFS); /tmp writable")

    def held(self, rev: str, seconds: float) -> None:
        """The service pods of REV must be held by their init container (server not running, no answer)."""
        time.sleep(seconds)
        for pod, port in self.play_json(rev)["deployments"].items():
            state = podman("inspect", "-f", "{{.State.Status}}", f"{pod}-sentiment-analyzer", check=False).stdout.strip()
            expect(state != "running", f"{pod}: the server runs although the volume lacks its lock's commit")
            expect(not wait_ready(port, 1), f"{pod}: ready although the volume lacks its lock's commit")
            init = podman("inspect", "-f", "{{.State.Status}}", f"{pod}-wait-for-models", check=False).stdout.strip()
            ok(f"{pod}: held by its init container (init: {init or 'gone'}, server: {state or 'not created'})")

    def released(self, rev: str, timeout: float = 240) -> None:
        for pod, port in self.play_json(rev)["deployments"].items():
            expect(wait_ready(port, timeout), f"{pod}: never became ready after provisioning "
                                              f"(podman logs {pod}-wait-for-models / {pod}-sentiment-analyzer)")
            ok(f"{pod}: released once the volume held its commit; ready")

    def rollout(self) -> None:
        v1 = self.commit_of("v1")
        # a second commit of the same model: the same files plus a release note (labels unchanged)
        src = self.state / "hub" / "models--smart-model-manager--finbert-mini-demo" / "snapshots" / v1
        v2dir = self.state / "v2-model"
        shutil.rmtree(v2dir, ignore_errors=True)
        shutil.copytree(src, v2dir, symlinks=False)
        (v2dir / "RELEASE.txt").write_text("demo model, second release (same weights)\n")
        subprocess.run([self.smm, "import", str(v2dir), "--as", REPO_ID, "--cache-dir", str(self.state / "hub")],
                       check=True, capture_output=True, timeout=300)
        self.sh("make_lock", "v2")
        v2 = self.commit_of("v2")
        expect(v2 != v1, "the second release has a new commit")
        self.sh("render", "v2", str(self.base_port + 10))
        cm1, cm2 = self.play_json("v1")["lock_configmap"], self.play_json("v2")["lock_configmap"]
        expect(cm1 != cm2, f"a lock change must change the ConfigMap name ({cm1} == {cm2})")
        ok(f"lock change: ConfigMap {cm1} -> {cm2}")
        self.sh("play", "v2", "deployments")
        self.held("v2", 6)                      # a stale volume (only v1) holds the new pods
        self.serving("v1", v1)                  # ... while the old pods keep serving v1
        self.sh("play", "v2", "jobs")
        job = self.play_json("v2")["jobs"][0]
        code = wait_exit(f"{job}-verify", 600)
        expect(code == "0", f"{job}: provisioning v2 exited {code}: {podman('logs', f'{job}-pull', check=False).stderr[-1500:]}")
        ok(f"{job}: the Job added commit {v2[:12]}")
        self.released("v2")
        self.serving("v2", v2)                  # new pods serve the new commit
        self.serving("v1", v1)                  # old pods still serve theirs
        if self.skip_multi:
            print(f"SKIP old commit after a new one / rollback: {self.skip_multi}", flush=True)
            return
        # the old commit still loads: restart an old pod (its server loads from the volume again)
        old = next(iter(self.play_json("v1")["deployments"]))
        podman("pod", "restart", old)
        expect(wait_ready(self.play_json("v1")["deployments"][old], 240), f"{old}: did not come back after restart")
        ok(f"{old}: restarted after v2 was provisioned; loads v1 again")
        self.serving("v1", v1)
        # rollback: the previous lock again (same ConfigMap name as v1), new pods load v1
        shutil.rmtree(self.state / "rollback", ignore_errors=True)
        (self.state / "rollback").mkdir()
        shutil.copy(self.state / "v1" / "models.lock", self.state / "rollback" / "models.lock")
        self.sh("render", "rollback", str(self.base_port + 20))
        expect(self.play_json("rollback")["lock_configmap"] == cm1, "rolling back gives the v1 ConfigMap name again")
        self.sh("play", "rollback", "deployments")
        self.released("rollback")
        self.serving("rollback", v1)
        ok("rollback: pods with the previous lock load the previous commit")

    def node_cache(self) -> None:
        """Several nodes, layout (b) (docs/kubernetes.md, "Several nodes"), on this one node: the mirror
        component serves the central volume with a token; the node-cache DaemonSet pulls the lock's files
        from it into a node-local volume; the service pods mount that copy read-only and wait for it."""
        src = "v2" if (self.state / "v2" / "models.lock").exists() else "v1"  # the newest lock
        rev, newest = "nodecache", self.commit_of(src)
        shutil.rmtree(self.state / rev, ignore_errors=True)
        (self.state / rev).mkdir()
        shutil.copy(self.state / src / "models.lock", self.state / rev / "models.lock")
        self.sh("render", rev, str(self.base_port + 25), "mirror", "node-cache")
        play = self.play_json(rev)
        (mirror, mport), = play["others"].items()
        (node,) = play["daemonsets"]
        self.sh("play", rev, "others")
        # podman drops probes: poll the routes the mirror's readiness and liveness probes use, which
        # answer without the token.
        expect(wait_ready(mport, 120), f"{mirror}: GET /readyz never answered 200 (its readiness probe)")
        status, _ = http(mport, "/healthz")
        expect(status == 200, f"{mirror}: GET /healthz answered {status} (its liveness probe)")
        token = (self.state / "mirror-token").read_text().strip()
        api = f"/api/models/{REPO_ID}/revision/{newest}"
        status, _ = http(mport, api)
        expect(status == 401, f"{mirror}: answered {status} without the token (expected 401)")
        status, body = http_token(mport, api, token)
        expect(status == 200, f"{mirror}: {status} with the token: {str(body)[:300]}")
        ok(f"{mirror} on 127.0.0.1:{mport}: ready on /readyz, alive on /healthz; serves the central volume "
           "read-only; 401 without the token, 200 with it (a file from the Secret)")
        for claim in [p for p in play["volumes"] if p.endswith("-models-node-cache")]:
            podman("kube", "play", str(self.state / rev / "play" / "pvc" / f"{claim}.yaml"))
        self.sh("play", rev, "deployments")
        self.held(rev, 6)                       # the node's copy is empty: the service pods wait
        self.sh("play", rev, "daemonsets")
        # the main container starts only after the init container `pull` exited 0 (podman then removes it);
        # its first full re-hash of the node's copy prints "OK: ..."
        done, deadline, logs = "OK: /app/models (full, against /app/lock/models.lock)", time.monotonic() + 600, ""
        while time.monotonic() < deadline and done not in logs:
            time.sleep(1)
            out = podman("logs", f"{node}-verify", check=False)
            logs = out.stdout + out.stderr
        expect(done in logs, f"{node}: no full check by its verify container ({logs[-800:]}); the pull init "
                             f"container: {podman('logs', f'{node}-pull', check=False).stderr[-1500:]}")
        verify = podman("inspect", "-f", "{{.State.Status}}", f"{node}-verify", check=False).stdout.strip()
        expect(verify == "running", f"{node}: the verify container is {verify}, expected running (hourly loop)")
        ok(f"{node}: pulled commit {newest[:12]} from the mirror into the node-local volume (sha256-verified); "
           "its verify container runs")
        self.released(rev)
        self.serving(rev, newest)
        for pod in play["deployments"]:
            mounts = json.loads(podman("inspect", "-f", "{{json .Mounts}}", f"{pod}-sentiment-analyzer").stdout)
            m = next(x for x in mounts if x.get("Destination") == "/app/models")
            expect(m.get("Name", "").endswith("-models-node-cache") and not m.get("RW", True),
                   f"{pod}: /app/models is {m}, expected the node-local volume, read-only")
        ok("node-cache: the service pods serve from the node-local copy, mounted read-only")


def http_token(port: int, path: str, token: str) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def wait_exit(ctr: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = podman("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", ctr, check=False).stdout.split()
        if out and out[0] in ("exited", "stopped"):
            return out[1]
        time.sleep(1)
    return "timeout"


def host_labels(py: str, state: Path, commit: str) -> list[str]:
    """The same model files, loaded on the host by the library (ONNX backend), give these labels."""
    code = ("import json, sys; from smart_model_manager import get_model_manager; "
            "m = get_model_manager().load_model(sys.argv[1], 'sentiment', revision=sys.argv[2]); "
            "print(json.dumps([r[0]['label'] for r in m(json.loads(sys.argv[3]))]))")
    proc = subprocess.run([py, "-c", code, REPO_ID, commit, json.dumps(list(HEADLINES))], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "SMM_ENV": "dev", "SMM_BACKEND": "onnx",
                                                       "MODEL_CACHE_DIR": str(state / "hub")})
    if proc.returncode != 0:
        raise CheckFailed(f"host prediction failed: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", type=Path, required=True)
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--mirror", required=True)
    ap.add_argument("--base-port", type=int, required=True)
    ap.add_argument("--skip-rollout", default="", help="reason to skip the rollout checks")
    ap.add_argument("--skip-node-cache", default="", help="reason to skip the node-cache layout checks")
    ap.add_argument("--skip-image", default="", help="reason to skip the models-as-OCI-images checks")
    ap.add_argument("--skip-multi-commit", default="",
                    help="reason to skip the checks that need several commits per model on the volume")
    args = ap.parse_args(argv)
    run = Run(args)
    try:
        expect((args.state / "gate-held").exists(), "up did not see the init container hold the pods")
        expect((args.state / "gate-released").exists(), "up did not see the init container release the pods")
        ok("init container held the service pods on the empty volume and released them once provisioned")
        v1 = run.commit_of("v1")
        run.serving("v1", v1)
        expect(len(run.play_json("v1")["deployments"]) == 2, "the dev overlay is played with 2 replicas")
        run.hardening("v1")
        if args.skip_rollout:
            print(f"SKIP rollout checks: {args.skip_rollout}", flush=True)
        else:
            run.rollout()
        if args.skip_node_cache:
            print(f"SKIP node-cache layout: {args.skip_node_cache}", flush=True)
        else:
            run.node_cache()
        if args.skip_image:
            print(f"SKIP models as OCI images: {args.skip_image}", flush=True)
        else:
            sys.modules.setdefault("k8s_local_check", sys.modules[__name__])  # one CheckFailed class, not two
            from k8s_local_image import image_volume

            image_volume(run)
    except CheckFailed as e:
        print(f"FAIL {e}", flush=True)
        return 1
    print("all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
