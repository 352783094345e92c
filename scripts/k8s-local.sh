#!/usr/bin/env bash
# k8s-local.sh up|check|down: run the rendered Kubernetes manifests with real containers on this machine
# (podman kube play), no cluster needed. Everything is derived from `kubectl kustomize deploy/k3s/overlays/...`;
# scripts/k8s_podman.py translates podman 4.3's gaps (docs/kubernetes.md, "Running the manifests with podman").
# Rendered from the prod overlay (2 replicas) by default.
#
#   up      base image (mmdebstrap + podman import when no registry is reachable; or BASE=python:3.11-slim),
#           wheels, image (the Dockerfile), demo model (without ONNX files: exported in the `export` image,
#           non-root, read-only root, no network), mirror on 127.0.0.1, lock, render, then: the service
#           pods first (their init container must block on the empty volume), the Job's pod template as a
#           Pod against the mirror, and the 2 replicas sharing the read-only volume
#   check   from the host: /readyz 200 and the right labels from POST /v1/sentiment on every replica,
#           non-root, writes to /app/models and / fail; then the rollout: a new lock (new ConfigMap name),
#           the Job adds the new commit, new pods serve it, the old commit still loads (rollback); then
#           several nodes, layout (b), on this one: the mirror and node-cache components (token, node-local
#           copy pulled and verified, service pods on it read-only); then models as OCI images (the
#           image-volume component): `smm image build` + `smm image push` to a real registry on 127.0.0.1
#           (Debian's docker-registry, started by `up`), 2 replicas serving from the read-only image mount,
#           a rollout to v2 (bytes pulled: only the changed layers), a rollback, and a tampered layer pushed
#           under the same tag that the init container refuses, naming the file
#   down    stop and remove what `up` started (by name and PID), the volume, the mirror, the images it built
#
# Environment: STATE (default build/k8s-local), PREFIX (default smm-e2e), OVERLAY (default prod: 2 replicas),
# BASE_PORT (default 28480; the pods use BASE_PORT.. +37), MIRROR_PORT (default: a free one), BASE (a base
# image; default: one made with mmdebstrap), DEMO_MODEL_DIR (an already built demo model folder; without
# onnx/model.onnx it is exported in the `export` image, built with the torch of $PY; default:
# `smm models build-demo`), KEEP_BASE=1 keeps the base image on down, REUSE_IMAGE=1 skips the image builds
# when the images exist (quicker iterations).
# Every server listens on 127.0.0.1 only. Output of each step goes to $STATE/logs/.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
STATE="${STATE:-$REPO/build/k8s-local}"
PREFIX="${PREFIX:-smm-e2e}"
BASE_PORT="${BASE_PORT:-28480}"
PY="${PY:-$REPO/.venv/bin/python}"
SMM="${SMM:-$REPO/.venv/bin/smm}"
KUBECTL="${KUBECTL:-$REPO/.venv/bin/kubectl}"
BASE_IMAGE="localhost/$PREFIX-base:bookworm"
IMAGE="localhost/$PREFIX-smart-model-manager:latest-e2e"
IMAGE_EXPORT="localhost/$PREFIX-smart-model-manager:latest-e2e-export"
REPO_ID="smart-model-manager/finbert-mini-demo"
OVERLAY="${OVERLAY:-prod}"   # prod: 2 replicas (the image digest is mapped to the local build)
LOGS="$STATE/logs"
mkdir -p "$LOGS"

# This sandbox needs runc (crun fails on hybrid cgroups) and no default ulimits; a normal host does not.
# A project-local containers.conf, never /etc.
export CONTAINERS_CONF="$STATE/containers.conf"
cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
EOF

log() { echo "k8s-local: $(date -u +%T) $*" >&2; }
die() { echo "k8s-local: $*" >&2; exit 1; }
step() { local name="$1"; shift; log "$name"; "$@" > "$LOGS/$name.log" 2>&1 || { tail -40 "$LOGS/$name.log" >&2; die "$name failed (log: $LOGS/$name.log)"; }; }

need() { command -v "$1" > /dev/null 2>&1 || die "$1 not found (apt-get install -y podman runc mmdebstrap)"; }

base_image() {
  if [ -n "${BASE:-}" ]; then echo "$BASE"; return; fi
  if ! podman image exists "$BASE_IMAGE"; then
    need mmdebstrap
    step mmdebstrap mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      bookworm "$STATE/rootfs.tar"
    step podman-import podman import --change 'CMD ["/bin/bash"]' "$STATE/rootfs.tar" "$BASE_IMAGE"
    rm -f "$STATE/rootfs.tar"
  fi
  echo "$BASE_IMAGE"
}

build_image() {
  local base="$1"
  rm -rf "$REPO/build/wheels"
  step wheels "$PY" -m pip wheel --quiet --wheel-dir "$REPO/build/wheels" "${REPO}[onnx,server,sign]" 'setuptools>=77' wheel
  # --label marks every image this build makes, its intermediate stages included: down removes exactly
  # those (never another build's, which a concurrent `image prune` or a before/after diff would)
  step podman-build podman build --target runtime --build-arg "BASE=$base" --label "io.smm.e2e=$PREFIX" \
    -t "$IMAGE" -f "$REPO/Dockerfile" "$REPO"
}

demo_model() {
  # An HF cache holding the demo model, which the mirror serves. DEMO_MODEL_DIR: import an existing build.
  # A model without ONNX files (FinBERT on the Hub, or DEMO_MODEL_DIR without onnx/) is exported in the
  # `export` image, the recipe of docs/kubernetes.md ("A Hub model without ONNX files").
  local base="$1" hub="$STATE/hub"
  if [ ! -d "$hub/models--smart-model-manager--finbert-mini-demo" ]; then
    if [ -n "${DEMO_MODEL_DIR:-}" ]; then
      step demo-import "$SMM" import "$DEMO_MODEL_DIR" --as "$REPO_ID" --cache-dir "$hub" --alias finbert-demo
    else
      step demo-build "$SMM" models build-demo --cache-dir "$hub"
    fi
  fi
  if ! compgen -G "$hub/models--smart-model-manager--finbert-mini-demo/snapshots/*/onnx/model.onnx" > /dev/null; then
    export_in_image "$base" "$hub"
  fi
}

# export_in_image BASE HUB: `smm export onnx` of the demo model in HUB, run in the `export` image as the pods
# run: uid 10001, read-only root, /tmp the only writable place besides the cache, no network, no capabilities
export_in_image() {
  local base="$1" hub="$2"
  if [ "${REUSE_IMAGE:-0}" = 1 ] && podman image exists "$IMAGE_EXPORT"; then log "reusing $IMAGE_EXPORT"; else
    # torch pinned to the host's build: plain PyPI would bring the CUDA build and its nvidia wheels (GBs)
    local torch; torch="$("$PY" -c 'import torch; print(torch.__version__)')" \
      || die "the export image is built with the torch of $PY (pip install torch, CPU build)"
    rm -rf "$REPO/build/wheels-export"
    step wheels-export "$PY" -m pip wheel --quiet --wheel-dir "$REPO/build/wheels-export" \
      "${REPO}[export,onnx,server,sign]" "torch==$torch" 'setuptools>=77' wheel
    step podman-build-export podman build --target export --build-arg "BASE=$base" \
      --build-arg WHEELS=build/wheels-export --label "io.smm.e2e=$PREFIX" -t "$IMAGE_EXPORT" -f "$REPO/Dockerfile" "$REPO"
  fi
  # the container writes the cache as uid 10001 (rootless podman: `podman unshare` maps that uid)
  if [ "$(id -u)" = 0 ]; then chown -R 10001:10001 "$hub"; else podman unshare chown -R 10001:10001 "$hub"; fi
  step export-in-image podman run --rm --network none --read-only --tmpfs /tmp:rw,size=1g --cap-drop ALL \
    --security-opt no-new-privileges -v "$hub:/cache" "$IMAGE_EXPORT" \
    export onnx "$REPO_ID" --cache-dir /cache --no-int8
  compgen -G "$hub/models--smart-model-manager--finbert-mini-demo/snapshots/*/onnx/model.onnx" > /dev/null \
    || die "the export image wrote no onnx/model.onnx: $(tail -5 "$LOGS/export-in-image.log")"
  log "export image: onnx/model.onnx exported in the container (uid 10001, read-only root, no network); $(grep -o 'max |onnx - torch| = [^)]*' "$LOGS/export-in-image.log" | head -1)"
}

start_registry() {  # Debian's docker-registry (CNCF distribution) on a free 127.0.0.1 port, storage in $STATE
  stop_pid registry
  if ! command -v docker-registry > /dev/null 2>&1; then
    log "no docker-registry (apt-get install -y docker-registry skopeo): the model-image checks will skip"; return 0
  fi
  local port; port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  rm -rf "$STATE/registry" && mkdir -p "$STATE/registry/storage"
  printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$STATE/registry/storage" "$port" > "$STATE/registry/config.yml"
  setsid docker-registry serve "$STATE/registry/config.yml" > "$LOGS/registry.log" 2>&1 < /dev/null &
  echo $! > "$STATE/registry.pid"
  for _ in $(seq 100); do
    if "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
        "http://127.0.0.1:$port/v2/" 2> /dev/null; then
      echo "$port" > "$STATE/registry.port"; log "registry on 127.0.0.1:$port"; return 0
    fi
    sleep 0.2
  done
  die "docker-registry did not start: $(tail -5 "$LOGS/registry.log")"
}

start_mirror() {  # on MIRROR_PORT, or (default) a free port the OS picks, recorded in $STATE/mirror.port
  stop_pid mirror
  setsid "$SMM" mirror serve --root "$STATE/hub" --host 127.0.0.1 --port "${MIRROR_PORT:-0}" \
    > "$LOGS/mirror.log" 2>&1 < /dev/null &
  echo $! > "$STATE/mirror.pid"
  local url=""
  for _ in $(seq 100); do
    url="$(sed -n 's|^Serving .* at \(http://127\.0\.0\.1:[0-9]*\)$|\1|p' "$LOGS/mirror.log")"
    [ -z "$url" ] || break
    sleep 0.2
  done
  [ -n "$url" ] || die "mirror did not start: $(cat "$LOGS/mirror.log")"
  echo "${url##*:}" > "$STATE/mirror.port"
  log "mirror on $url"
}

mirror_port() { cat "$STATE/mirror.port"; }

stop_pid() {
  local f="$STATE/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid="$(cat "$f")"
  if kill -0 "$pid" 2> /dev/null; then kill -TERM -- "-$pid" 2> /dev/null || kill -TERM "$pid" 2> /dev/null || true; fi
  rm -f "$f"
}

# make_lock NAME: models.yaml for the demo model -> $STATE/NAME/models.lock (pins what the mirror's main is now)
make_lock() {
  local dir="$STATE/$1"
  mkdir -p "$dir"
  printf 'models:\n  finbert-demo:\n    repo_id: %s\n    model_type: sentiment\n' "$REPO_ID" > "$dir/models.yaml"
  (cd "$dir" && step "lock-$1" "$SMM" lock --endpoint "http://127.0.0.1:$(mirror_port)")
}

# render NAME PORT [COMPONENT...]: the overlay (plus components, e.g. mirror node-cache) with
# $STATE/NAME/models.lock as the lock, translated into $STATE/NAME/play
render() {
  local name="$1" dir="$STATE/$1" port="$2" overlay="$OVERLAY" c; shift 2
  rm -rf "$dir/k3s" && cp -r "$REPO/deploy/k3s" "$dir/k3s"
  cp "$dir/models.lock" "$dir/k3s/base/models.lock"
  if [ -n "${MODEL_IMAGE:-}" ]; then  # the image-volume component's reference: what `smm image push` printed
    sed -i "s|^\( *reference: \).*|\1$MODEL_IMAGE|" "$dir/k3s/components/image-volume/kustomization.yaml"
  fi
  if [ $# -gt 0 ]; then  # a throw-away overlay: what a user gets by listing the components in theirs
    overlay="local-with-components"
    mkdir -p "$dir/k3s/overlays/$overlay"
    # in the overlay's namespace: kustomize gives a component's reference to the lock's ConfigMap the
    # generated (hashed) name only when both sit in one namespace
    local ns; ns="$(sed -n 's/^namespace: *//p' "$dir/k3s/overlays/$OVERLAY/kustomization.yaml")"
    { printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n  - ../%s\ncomponents:\n' "$ns" "$OVERLAY"
      for c in "$@"; do printf '  - ../../components/%s\n' "$c"; done; } > "$dir/k3s/overlays/$overlay/kustomization.yaml"
  fi
  "$KUBECTL" kustomize "$dir/k3s/overlays/$overlay" > "$dir/rendered.yaml"
  local mounts=() m
  for m in ${IMAGE_MOUNTS:-}; do mounts+=(--image-mount "$m"); done  # REF=PATH of `podman image mount REF`
  "$PY" "$HERE/k8s_podman.py" "$dir/rendered.yaml" "$dir/play" --prefix "$PREFIX-$name" --image "$IMAGE" \
    --base-port "$port" --claim-prefix "$PREFIX" --secret smm-mirror-token "${mounts[@]}" > "$dir/play.json"   # one volume shared by every revision
  # the optional ConfigMap smm-settings (docs/kubernetes.md): the Job downloads from the mirror
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-smm-settings\ndata:\n  HF_ENDPOINT: http://127.0.0.1:%s\n' "$PREFIX" \
    "$(mirror_port)" > "$dir/play/configmaps/$PREFIX-smm-settings.yaml"
  # the Secret smm-mirror-token the mirror component needs (created by the user; a ConfigMap here: k8s_podman.py)
  [ -s "$STATE/mirror-token" ] || "$PY" -c 'import secrets; print(secrets.token_hex(24))' > "$STATE/mirror-token"
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-smm-mirror-token\ndata:\n  token: "%s"\n' "$PREFIX" \
    "$(cat "$STATE/mirror-token")" > "$dir/play/configmaps/$PREFIX-smm-mirror-token.yaml"
}

play() {  # play REV jobs|deployments|others|daemonsets: each Pod in its own background `podman kube play` (it blocks on init containers)
  local dir="$STATE/$1" cms=() f pod
  for f in "$dir"/play/configmaps/*.yaml; do cms+=(--configmap "$f"); done
  for f in "$dir/play/$2"/*.yaml; do
    pod="$(basename "$f" .yaml)"
    setsid podman kube play "${cms[@]}" "$f" > "$LOGS/play-$pod.log" 2>&1 < /dev/null &
    echo $! > "$STATE/play-$pod.pid"
  done
}

wait_exit() {  # wait_exit CONTAINER TIMEOUT -> its exit code
  local waited=0 state
  while :; do
    state="$(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$1" 2> /dev/null || echo "missing 1")"
    case "$state" in exited*|stopped*) echo "${state#* }"; return 0 ;; esac
    [ "$waited" -lt "$2" ] || { echo timeout; return 0; }
    sleep 1; waited=$((waited + 1))
  done
}

ready() {  # ready PORT TIMEOUT: 0 once /readyz answers 200
  "$PY" - "$1" "$2" << 'EOF'
import sys, time, urllib.request
port, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(1)
EOF
}

up() {
  need podman
  stop_pods
  local base; base="$(base_image)"
  if [ "${REUSE_IMAGE:-0}" = 1 ] && podman image exists "$IMAGE"; then log "reusing $IMAGE"; else build_image "$base"; fi
  demo_model "$base"
  start_mirror
  start_registry
  make_lock v1
  render v1 "$BASE_PORT"
  rm -f "$STATE/gate-held" "$STATE/gate-released"
  log "volume (the PVC, played once)"
  podman volume rm -f "$PREFIX-models" > /dev/null 2>&1 || true
  step play-pvc podman kube play "$STATE/v1/play/pvc.yaml"
  log "service pods first, on the empty volume: their init container must hold them"
  play v1 deployments
  sleep "${GATE_SECONDS:-8}"
  local p
  for p in $(pods v1); do
    [ "$(podman inspect -f '{{.State.Status}}' "$p-sentiment-analyzer" 2> /dev/null || echo none)" != running ] \
      || die "$p started its server on an empty volume"
    if ready "$(port v1 "$p")" 1; then die "$p is ready on an empty volume"; fi
    [ "$(podman inspect -f '{{.State.Status}}' "$p-wait-for-models" 2> /dev/null || echo none)" = running ] \
      || die "$p has no running init container: $(tail -5 "$LOGS/play-$p.log")"
  done
  echo ok > "$STATE/gate-held"
  log "provisioning: the Job's pod template as a Pod, downloading from the mirror"
  play v1 jobs
  local job code; job="$(jq_first v1 jobs)"
  code="$(wait_exit "$job-verify" 600)"
  podman logs "$job-pull" > "$LOGS/job-v1-pull.log" 2>&1 || true
  podman logs "$job-verify" > "$LOGS/job-v1-verify.log" 2>&1 || true
  [ "$code" = 0 ] || die "provisioning failed (exit $code): $(tail -20 "$LOGS/job-v1-pull.log" "$LOGS/job-v1-verify.log")"
  for p in $(pods v1); do
    ready "$(port v1 "$p")" 240 || die "$p never became ready: $(podman logs --tail 20 "$p-sentiment-analyzer" 2>&1)"
  done
  echo ok > "$STATE/gate-released"
  log "up: $(pods v1 | wc -w) replicas ready on 127.0.0.1, ports $(for p in $(pods v1); do printf '%s ' "$(port v1 "$p")"; done)"
}

pods() { "$PY" -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["deployments"]))' "$STATE/$1/play.json"; }
port() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["deployments"][sys.argv[2]])' "$STATE/$1/play.json" "$2"; }
jq_first() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][0])' "$STATE/$1/play.json" "$2"; }

check() {
  need podman
  [ -f "$STATE/v1/play.json" ] || die "run up first"
  # A volume that keeps several commits per model (so an old lock still loads after a new one is provisioned)
  # needs `smm prune --keep-locks`; an smm built without it gets those checks reported as skipped, not passed.
  local skip=()
  "$SMM" prune --help 2> /dev/null | grep -q -- --keep-locks \
    || skip=(--skip-multi-commit "this smm has no prune --keep-locks: the volume keeps one commit per model")
  "$PY" "$HERE/k8s_local_check.py" --state "$STATE" --image "$IMAGE" --prefix "$PREFIX" \
    --mirror "http://127.0.0.1:$(mirror_port)" --base-port "$BASE_PORT" --repo "$REPO" "${skip[@]}"
}

stop_pods() {  # every pod and volume of this run (by the play files' names and the PREFIX), the mirror
  local f
  for f in "$STATE"/play-*.pid; do if [ -f "$f" ]; then stop_pid "$(basename "$f" .pid)"; fi; done
  # the pods this run played ($PREFIX-REV-...; not another run's $PREFIX-123-...): together, 5 s to stop
  podman pod ls -q --filter "name=^$PREFIX-(v1|v2|rollback|nodecache|img-v1|img-v2|img-rollback|img-tamper)-" | xargs -r podman pod rm -f -t 5 > /dev/null 2>&1 || true
  # the model images this run pulled from its registry (mounted for the image-volume pods)
  podman images --format '{{.Repository}}:{{.Tag}} {{.ID}}' | awk -v r="/$PREFIX-models:" 'index($1, r) { print $2 }' \
    | sort -u | while read -r id; do podman image unmount -f "$id" > /dev/null 2>&1 || true; podman rmi -f "$id" > /dev/null 2>&1 || true; done
  stop_pid registry
  podman volume rm -f "$PREFIX-models" "$PREFIX-models-node-cache" > /dev/null 2>&1 || true
  # podman keeps each --configmap as a volume of the ConfigMap's name
  for f in "$STATE"/*/play/configmaps/*.yaml; do
    if [ -f "$f" ]; then podman volume rm -f "$(basename "$f" .yaml)" > /dev/null 2>&1 || true; fi
  done
  stop_pid mirror
}

down() {
  stop_pods
  podman rmi -f "$IMAGE" "$IMAGE_EXPORT" > /dev/null 2>&1 || true
  [ "${KEEP_BASE:-0}" = 1 ] || podman rmi -f "$BASE_IMAGE" > /dev/null 2>&1 || true
  podman images -a -q --filter "label=io.smm.e2e=$PREFIX" | xargs -r podman rmi -f > /dev/null 2>&1 || true
  podman images -q --filter reference=localhost/podman-pause | xargs -r podman rmi > /dev/null 2>&1 || true  # not -f: in use = kept
  log "down"
}

[ $# -ge 1 ] || { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 2; }
case "$1" in
  up) up ;;
  check) check ;;
  _helper) shift; "$@" ;;   # used by k8s_local_check.py: make_lock, render, play with this run's settings
  down) down ;;
  *) echo "k8s-local.sh: up, check or down" >&2; exit 2 ;;
esac
