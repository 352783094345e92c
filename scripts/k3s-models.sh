#!/usr/bin/env bash
# k3s-models.sh {provision|validate|status} [smm validate flags...]
#
#   provision  apply namespace + PVC, (re)create the ConfigMap smm-models-lock from ./models.lock
#              (or $SMM_LOCK), re-run the provisioning Job and wait for it; prints its log.
#   validate   with a reachable cluster: `smm validate` inside the running sentiment-analyzer pod
#              (default --quick; pass --full to re-hash). Without kubectl or a cluster (or with
#              SMM_K3S_LOCAL=1): `smm validate --dir "$SMM_VOLUME_DIR"` on this machine.
#   status     cluster: PVC, Job, Deployment and pods; local: `smm ls --dir "$SMM_VOLUME_DIR"`.
#
# Exit codes follow `smm validate`: 0 ok, 1 findings, 2 usage. Environment: NAMESPACE
# (default crypto-data-collection), KUBECTL (default kubectl), SMM (default: smm on PATH, else the
# repo's .venv/bin/smm), SMM_VOLUME_DIR (default /app/models), SMM_K3S_LOCAL=1 to force local mode,
# WAIT_TIMEOUT for provision (default 1800s).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
NAMESPACE="${NAMESPACE:-crypto-data-collection}"
KUBECTL="${KUBECTL:-kubectl}"
MANIFESTS="$REPO/deploy/k3s"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-1800s}"

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  exit 2
}

smm() {
  if [ -n "${SMM:-}" ]; then "$SMM" "$@"
  elif [ -n "$(type -P smm)" ]; then "$(type -P smm)" "$@"  # type -P: PATH only, not this function
  elif [ -x "$REPO/.venv/bin/smm" ]; then "$REPO/.venv/bin/smm" "$@"
  else echo "k3s-models.sh: smm not found; install smart-model-manager or set SMM=/path/to/smm" >&2; exit 2
  fi
}

have_cluster() {
  [ "${SMM_K3S_LOCAL:-0}" != "1" ] || return 1
  command -v "$KUBECTL" >/dev/null 2>&1 || return 1
  "$KUBECTL" cluster-info --request-timeout=3s >/dev/null 2>&1
}

k() { "$KUBECTL" -n "$NAMESPACE" "$@"; }

provision() {
  have_cluster || { echo "k3s-models.sh provision: no reachable cluster (kubectl cluster-info failed);" \
    "to provision a local folder instead run: smm pull --target DIR" >&2; exit 1; }
  local lock="${SMM_LOCK:-models.lock}"
  [ -f "$lock" ] || { echo "k3s-models.sh provision: $lock not found; create it with \`smm lock\`" >&2; exit 2; }
  "$KUBECTL" apply -f "$MANIFESTS/namespace.yaml" -f "$MANIFESTS/pvc-models.yaml"
  k create configmap smm-models-lock --from-file=models.lock="$lock" --dry-run=client -o yaml | "$KUBECTL" apply -f -
  k delete job provision-models --ignore-not-found
  "$KUBECTL" apply -f "$MANIFESTS/job-provision-models.yaml"
  if k wait --for=condition=complete job/provision-models --timeout="$WAIT_TIMEOUT"; then
    k logs job/provision-models --tail=50
    echo "provisioned; deploy or restart the service: $KUBECTL apply -f $MANIFESTS/deployment-sentiment-analyzer.yaml"
  else
    k logs job/provision-models --tail=100 || true
    echo "k3s-models.sh provision: the Job did not complete (see the log above)" >&2
    exit 1
  fi
}

validate() {
  local args=("$@")
  local mode="--quick"
  for a in "${args[@]+"${args[@]}"}"; do case "$a" in --full|--quick) mode="";; esac; done
  if have_cluster; then
    k exec deploy/sentiment-analyzer -- smm validate ${mode:+"$mode"} --dir /app/models "${args[@]+"${args[@]}"}"
  else
    local dir="${SMM_VOLUME_DIR:-/app/models}"
    echo "k3s-models.sh: no cluster; validating $dir locally" >&2
    smm validate ${mode:+"$mode"} --dir "$dir" "${args[@]+"${args[@]}"}"
  fi
}

status() {
  if have_cluster; then
    k get pvc/models job/provision-models deploy/sentiment-analyzer --ignore-not-found
    k get pods -l 'app.kubernetes.io/part-of in (crypto-data-collection)' -o wide 2>/dev/null \
      || k get pods -o wide
  else
    local dir="${SMM_VOLUME_DIR:-/app/models}"
    echo "k3s-models.sh: no cluster; listing $dir locally" >&2
    smm ls --dir "$dir" "$@"
  fi
}

[ $# -ge 1 ] || usage
cmd="$1"; shift
case "$cmd" in
  provision) provision "$@" ;;
  validate) validate "$@" ;;
  status) status "$@" ;;
  -h|--help|help) usage ;;
  *) echo "k3s-models.sh: unknown command '$cmd'" >&2; usage ;;
esac
