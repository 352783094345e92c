#!/usr/bin/env bash
# k3s-models.sh COMMAND [args...]: operate the models volume and the sentiment service on a cluster.
#
#   provision      render the overlay, replace the previous provisioning Job, apply everything, wait for
#   (or: setup)    the Job (a failed Job fails at once, with its log), then for the Deployment's rollout
#                  With components/image-volume (models as an OCI image) there is no Job to wait for:
#                  the kubelet pulls the model image, so provision applies and waits for the rollout only
#   status         the PVC, Job, Deployment and every pod of the stack (label part-of=smart-model-manager)
#   validate [--full]
#                  `smm validate` in its own short-lived pod that mounts the volume READ-ONLY with the lock
#                  the Deployment uses (default --quick); exit 0 ok, 1 findings
#   logs [job|service|mirror]
#                  logs of the provisioning Job (default), of the service pods or of the mirror
#   monitor        watch the stack's pods (Ctrl-C to stop)
#   prune N [--dry-run]
#                  `smm prune --keep-locks N` in its own pod (the only one that mounts the volume read-write
#                  besides the Job): removes commits no recent lock pins; the running lock's are kept
#   cleanup        delete finished provisioning Jobs and leftover validate/prune pods (models stay)
#   reset --yes    delete everything the overlay created, the models volume included
#
# Local mode (no cluster): SMM_K3S_LOCAL=1 makes `validate` and `status` check SMM_VOLUME_DIR on this
# machine. It is never chosen silently: without it, a missing kubectl or an unreachable cluster is an error.
#
# Environment: OVERLAY (default deploy/k3s/overlays/prod), NAMESPACE (default: the overlay's), KUBECTL
# (default kubectl), WAIT_TIMEOUT seconds for the Job (default 1800), POLL seconds (default 5),
# SMM (path to smm for local mode; default smm on PATH, else the repo's .venv/bin/smm), SMM_VOLUME_DIR.
# Exit codes: 0 ok, 1 failure or findings, 2 usage.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
KUBECTL="${KUBECTL:-kubectl}"
OVERLAY="${OVERLAY:-$REPO/deploy/k3s/overlays/prod}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-1800}"
POLL="${POLL:-5}"
SELECTOR="app.kubernetes.io/part-of=smart-model-manager"
JOB=provision-models
DEPLOY=sentiment-analyzer

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  exit 2
}

die() { echo "k3s-models.sh: $*" >&2; exit 1; }

local_mode() { [ "${SMM_K3S_LOCAL:-0}" = "1" ]; }

smm() {
  if [ -n "${SMM:-}" ]; then "$SMM" "$@"
  elif [ -n "$(type -P smm)" ]; then "$(type -P smm)" "$@"  # type -P: PATH only, not this function
  elif [ -x "$REPO/.venv/bin/smm" ]; then "$REPO/.venv/bin/smm" "$@"
  else echo "k3s-models.sh: smm not found; install smart-model-manager or set SMM=/path/to/smm" >&2; exit 2
  fi
}

# A reachable cluster, or an error that says what was tried. Never falls back to local mode.
need_cluster() {
  command -v "$KUBECTL" >/dev/null 2>&1 \
    || die "'$KUBECTL' not found. Install kubectl (or set KUBECTL), or set SMM_K3S_LOCAL=1 to check a local folder."
  "$KUBECTL" cluster-info --request-timeout=5s >/dev/null 2>&1 \
    || die "the cluster is unreachable ('$KUBECTL cluster-info' failed; check KUBECONFIG / the context). Nothing was done."
}

RENDERED=""
render() {
  [ -n "$RENDERED" ] && return 0
  RENDERED="$(mktemp "${TMPDIR:-/tmp}/k3s-models.XXXXXX")"
  trap 'rm -f "$RENDERED"' EXIT
  "$KUBECTL" kustomize "$OVERLAY" > "$RENDERED" || die "kubectl kustomize $OVERLAY failed"
  if [ -z "${NAMESPACE:-}" ]; then
    NAMESPACE="$(awk '/^  namespace: / { print $2; exit }' "$RENDERED")"
    [ -n "$NAMESPACE" ] || die "could not find the namespace in the rendered $OVERLAY; set NAMESPACE"
  fi
}

k() { "$KUBECTL" -n "$NAMESPACE" "$@"; }

# Wait for the Job: 0 complete, 1 failed (at once, not after the timeout) or timed out.
wait_job() {
  local waited=0 state
  while :; do
    state="$(k get "job/$JOB" -o 'jsonpath={range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}' 2>/dev/null || true)"
    case " $state " in
      *" Complete "*) return 0 ;;
      *" Failed "*) echo "k3s-models.sh: Job $JOB failed:" >&2
                    k get "job/$JOB" -o 'jsonpath={.status.conditions[?(@.type=="Failed")].message}' >&2 || true
                    echo >&2; return 1 ;;
    esac
    if [ "$waited" -ge "$WAIT_TIMEOUT" ]; then
      echo "k3s-models.sh: Job $JOB not finished after ${WAIT_TIMEOUT}s" >&2; return 1
    fi
    sleep "$POLL"; waited=$((waited + POLL))
  done
}

provision() {
  need_cluster
  render
  if ! grep -q "^kind: Job$" "$RENDERED"; then
    # components/image-volume: the models are an OCI image the kubelet pulls; no provisioning Job exists.
    "$KUBECTL" apply -f "$RENDERED"
    k rollout status "deploy/$DEPLOY" --timeout="${WAIT_TIMEOUT}s"
    echo "image-volume layout: no provisioning Job needed; the service runs the lock in $(k get "deploy/$DEPLOY" \
      -o 'jsonpath={.spec.template.spec.volumes[?(@.name=="lock")].configMap.name}') from image $(k get \
      "deploy/$DEPLOY" -o 'jsonpath={.spec.template.spec.volumes[?(@.name=="models")].image.reference}')"
    return
  fi
  # A Job's pod template is immutable and the lock's ConfigMap name is part of it: replace the Job.
  k delete "job/$JOB" --ignore-not-found --wait=true
  "$KUBECTL" apply -f "$RENDERED"
  if wait_job; then
    k logs "job/$JOB" --all-containers --tail=50 || true
    k rollout status "deploy/$DEPLOY" --timeout="${WAIT_TIMEOUT}s"
    echo "provisioned; the service runs the lock in $(k get "deploy/$DEPLOY" \
      -o 'jsonpath={.spec.template.spec.volumes[?(@.name=="lock")].configMap.name}')"
  else
    k logs "job/$JOB" --all-containers --tail=100 >&2 || true
    die "provisioning failed (log above); fix the cause, then run provision again"
  fi
}

status() {
  if local_mode; then
    local dir="${SMM_VOLUME_DIR:-/app/models}"
    echo "k3s-models.sh: SMM_K3S_LOCAL=1: listing $dir on this machine" >&2
    smm ls --dir "$dir" "$@"; return
  fi
  need_cluster
  render
  k get pvc,job,deploy,daemonset,pods -l "$SELECTOR" -o wide
}

# run_pod NAME READONLY ARGV...: a short-lived restricted Pod with the Deployment's image, lock and claim,
# running `smm ARGV`; prints its log, deletes it, returns 0 if it succeeded, 1 if it failed.
run_pod() {
  local name="$1" ro="$2"; shift 2
  local jp='{.spec.template.spec.containers[0].image}{"|"}{.spec.template.spec.volumes[?(@.name=="lock")].configMap.name}{"|"}{.spec.template.spec.volumes[?(@.name=="models")].persistentVolumeClaim.claimName}'
  local found image lock claim pod args="" a
  found="$(k get "deploy/$DEPLOY" -o "jsonpath=$jp")" || die "deploy/$DEPLOY not found in $NAMESPACE; run provision first"
  IFS='|' read -r image lock claim <<< "$found"
  pod="smm-$name-$(date +%s)"
  for a in "$@"; do args="$args, \"$a\""; done
  k apply -f - > /dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $pod
  labels: {app.kubernetes.io/name: smm-$name, app.kubernetes.io/part-of: smart-model-manager}
spec:
  restartPolicy: Never
  activeDeadlineSeconds: 900
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: $name
      image: $image
      command: [smm$args]
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: {drop: [ALL]}}
      resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: "1", memory: 512Mi}}
      volumeMounts:
        - {name: models, mountPath: /app/models, readOnly: $ro}
        - {name: lock, mountPath: /app/lock, readOnly: true}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - {name: models, persistentVolumeClaim: {claimName: $claim, readOnly: $ro}}
    - {name: lock, configMap: {name: $lock}}
    - {name: tmp, emptyDir: {sizeLimit: 64Mi}}
EOF
  local phase="" waited=0
  while :; do
    phase="$(k get "pod/$pod" -o 'jsonpath={.status.phase}' 2>/dev/null || true)"
    case "$phase" in Succeeded|Failed) break ;; esac
    [ "$waited" -lt 900 ] || break
    sleep "$POLL"; waited=$((waited + POLL))
  done
  k logs "pod/$pod" || true
  k delete "pod/$pod" --ignore-not-found --wait=false > /dev/null || true
  case "$phase" in
    Succeeded) return 0 ;;
    Failed) return 1 ;;
    *) die "pod $pod did not finish (phase '${phase:-unknown}'); see: $KUBECTL -n $NAMESPACE describe pod $pod" ;;
  esac
}

validate() {
  local mode="--quick" a
  for a in "$@"; do case "$a" in --full) mode="--full" ;; --quick) ;; *) echo "k3s-models.sh validate: unknown option $a" >&2; exit 2 ;; esac; done
  if local_mode; then
    local dir="${SMM_VOLUME_DIR:-/app/models}"
    echo "k3s-models.sh: SMM_K3S_LOCAL=1: validating $dir on this machine" >&2
    smm validate "$mode" --dir "$dir" ${SMM_LOCK:+--lock "$SMM_LOCK"}; return
  fi
  need_cluster
  render
  # its own pod, read-only, with the lock the Deployment runs now (works while the service pods fail)
  run_pod validate true validate "$mode" --dir /app/models --lock /app/lock/models.lock
}

prune() {
  local keep="${1:-}"
  case "$keep" in ''|*[!0-9]*) echo "k3s-models.sh prune N [--dry-run]: N = how many recent locks to keep" >&2; exit 2 ;; esac
  shift
  local extra=() a
  for a in "$@"; do case "$a" in --dry-run) extra+=(--dry-run) ;; *) echo "k3s-models.sh prune: unknown option $a" >&2; exit 2 ;; esac; done
  need_cluster
  render
  # the only pod besides the Job that mounts the volume read-write
  run_pod prune false prune --dir /app/models --lock /app/lock/models.lock --keep-locks "$keep" "${extra[@]}"
}

logs() {
  need_cluster
  render
  case "${1:-job}" in
    job) k logs "job/$JOB" --all-containers --tail="${TAIL:-200}" ;;
    service) k logs -l app.kubernetes.io/name=$DEPLOY --all-containers --prefix --tail="${TAIL:-200}" ;;
    mirror) k logs -l app.kubernetes.io/name=smm-mirror --prefix --tail="${TAIL:-200}" ;;
    *) echo "k3s-models.sh logs: job, service or mirror" >&2; exit 2 ;;
  esac
}

monitor() {
  need_cluster
  render
  k get pods -l "$SELECTOR" -o wide --watch
}

cleanup() {
  need_cluster
  render
  local phase
  phase="$(k get "job/$JOB" -o 'jsonpath={.status.conditions[?(@.status=="True")].type}' 2>/dev/null || true)"
  case "$phase" in
    *Complete*|*Failed*) k delete "job/$JOB" --ignore-not-found ;;
    "") ;;
    *) echo "k3s-models.sh: Job $JOB still running; left alone" >&2 ;;
  esac
  k delete pod -l 'app.kubernetes.io/name in (smm-validate, smm-prune)' --ignore-not-found
}

reset() {
  [ "${1:-}" = "--yes" ] || { echo "k3s-models.sh reset deletes the models volume too; run: reset --yes" >&2; exit 2; }
  need_cluster
  render
  "$KUBECTL" delete -f "$RENDERED" --ignore-not-found --wait=true
}

[ $# -ge 1 ] || usage
cmd="$1"; shift
case "$cmd" in
  provision|setup) provision "$@" ;;
  status) status "$@" ;;
  validate) validate "$@" ;;
  prune) prune "$@" ;;
  logs) logs "$@" ;;
  monitor) monitor "$@" ;;
  cleanup) cleanup "$@" ;;
  reset) reset "$@" ;;
  -h|--help|help) usage ;;
  *) echo "k3s-models.sh: unknown command '$cmd'" >&2; usage ;;
esac
