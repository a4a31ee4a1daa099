#!/usr/bin/env bash
# Cloud TPU VMs for jaxlm: create (queued resources), set up, run on every worker, babysit Spot VMs.
# Every command is echoed as "+ ..." on stderr; with --dry-run (or DRY_RUN=1) it is printed on
# stdout and not run. See launch/README.md.
set -euo pipefail

PROG="tpu.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# On every worker (single quotes: $HOME is expanded there, not here).
# shellcheck disable=SC2016
REMOTE_DIR='$HOME/jaxlm'
# shellcheck disable=SC2016
REMOTE_VENV='$HOME/jaxlm-venv'

usage() {
  cat <<'EOF'
Usage: launch/tpu.sh COMMAND --name NAME --zone ZONE [options] [-- TRAIN COMMAND...]

Commands:
  create    request the TPU VM as a queued resource, wait until it is ACTIVE
  setup     put jaxlm on every worker (~/jaxlm) and install it with jax[tpu] (venv ~/jaxlm-venv)
  run       run the command after -- on every worker at once (--worker=all), in ~/jaxlm
  babysit   loop: (re)create the TPU VM if it is missing, preempted or failed, set it up, run the
            command; stop when the command exits 0. The jaxlm command resumes from the newest
            checkpoint in its workdir (use gs://BUCKET/run: the VM disk goes with the VM).
            Exit status 2 (bad config) or 3 (NaN losses) from jaxlm ends it without retrying
  status    print the queued resource and the TPU VM
  stop      send SIGTERM to `jaxlm train` on every worker (it saves a checkpoint, exits 75);
            the VM keeps running and billing: use delete for that
  delete    delete the queued resource and its TPU VM

Options (environment defaults in brackets):
  --name NAME              TPU VM (node) name, required [TPU_NAME]
  --zone ZONE              e.g. us-central2-b (v4), us-west4-a (v5e), required [TPU_ZONE]
  --project PROJECT        default: gcloud's configured project [TPU_PROJECT]
  --qr-id ID               queued resource id (default: NAME)
  --accelerator-type TYPE  e.g. v4-8, v4-32, v5litepod-8; create and babysit [TPU_TYPE]
  --runtime-version V      default from TYPE: v4 tpu-ubuntu2204-base, v5litepod
                           v2-alpha-tpuv5-lite, v5p v2-alpha-tpuv5, v6e v2-alpha-tpuv6e
  --spot                   Spot capacity: much cheaper, can be preempted [TPU_SPOT=1]
  --create-flag FLAG       extra flag for `queued-resources create`, repeatable
                           (e.g. --create-flag=--reserved)
  --repo SRC               what setup installs: a local checkout, packed (without .git, .venv,
                           runs/) and copied with scp (default: this repository), or a git URL,
                           cloned on every worker [JAXLM_REPO]
  --ref REF                branch or tag to clone (git URL only)
  --python VERSION         Python of the workers' venv, made with uv (default 3.12)
  --max-attempts N         babysit: give up after N attempts (default 20)
  --retry-delay SECONDS    babysit: pause after a failed attempt (default 60)
  --poll SECONDS           seconds between state checks while waiting (default 30)
  --delete-on-success      babysit: delete the TPU VM once the command has exited 0
  --dry-run                print the commands, one per line prefixed with "+ ", run nothing
                           [DRY_RUN=1]
  -h, --help               this help

Exit status: 0 done, 2 bad usage, otherwise the failing command's status.

Example (single host v4-8, Spot, re-created after every preemption):
  launch/tpu.sh babysit --name my-tpu --zone us-central2-b --accelerator-type v4-8 --spot -- \
      jaxlm train --config configs/gpt2_124m.py --workdir gs://my-bucket/runs/gpt2
EOF
}

# shellcheck source=launch/shell_quoting.sh
source "$(dirname "${BASH_SOURCE[0]}")/shell_quoting.sh"
log() { echo "[$PROG $(date -u +%H:%M:%S)] $*" >&2; }

is_dry() { [[ "$DRY_RUN" == 1 ]]; }

# Runs a command, or prints it in dry-run mode.
run() {
  if is_dry; then
    echo "+ $(shell_join "$@")"
  else
    echo "+ $(shell_join "$@")" >&2
    "$@"
  fi
}

# ---------------------------------------------------------------------------------- arguments
DRY_RUN="${DRY_RUN:-0}"
if [[ "$DRY_RUN" != 0 ]]; then DRY_RUN=1; fi
NAME="${TPU_NAME:-}"
ZONE="${TPU_ZONE:-}"
PROJECT="${TPU_PROJECT:-}"
QR_ID=""
TYPE="${TPU_TYPE:-}"
RUNTIME="${TPU_RUNTIME_VERSION:-}"
SPOT="${TPU_SPOT:-0}"
REPO="${JAXLM_REPO:-$(dirname "$HERE")}"
REF=""
PYTHON_VERSION="3.12"
MAX_ATTEMPTS=20
RETRY_DELAY=60
POLL=30
DELETE_ON_SUCCESS=0
CREATE_FLAGS=()
SUB=""
CMD=()
STATE=""
NODE=""

need_value() { [[ $# -ge 2 && -n "$2" ]] || die_usage "$1 needs a value"; }
need_int() { [[ "$2" =~ ^[0-9]+$ ]] || die_usage "$1 must be a whole number, got '$2'"; }

while (($#)); do
  if [[ "$1" =~ ^(--[a-z-]+)=(.*)$ ]]; then  # --opt=value -> --opt value
    set -- "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${@:2}"
  fi
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) DRY_RUN=1 ;;
    --spot) SPOT=1 ;;
    --delete-on-success) DELETE_ON_SUCCESS=1 ;;
    --name) need_value "$@"; NAME="$2"; shift ;;
    --zone) need_value "$@"; ZONE="$2"; shift ;;
    --project) need_value "$@"; PROJECT="$2"; shift ;;
    --qr-id) need_value "$@"; QR_ID="$2"; shift ;;
    --accelerator-type) need_value "$@"; TYPE="$2"; shift ;;
    --runtime-version) need_value "$@"; RUNTIME="$2"; shift ;;
    --create-flag) need_value "$@"; CREATE_FLAGS+=("$2"); shift ;;
    --repo) need_value "$@"; REPO="$2"; shift ;;
    --ref) need_value "$@"; REF="$2"; shift ;;
    --python) need_value "$@"; PYTHON_VERSION="$2"; shift ;;
    --max-attempts) need_value "$@"; need_int "$@"; MAX_ATTEMPTS="$2"; shift ;;
    --retry-delay) need_value "$@"; need_int "$@"; RETRY_DELAY="$2"; shift ;;
    --poll) need_value "$@"; need_int "$@"; POLL="$2"; shift ;;
    --) shift; CMD=("$@"); break ;;
    -*) die_usage "unknown option: $1" ;;
    *)
      [[ -z "$SUB" ]] || die_usage "unexpected argument '$1' (put the command to run after --)"
      SUB="$1"
      ;;
  esac
  shift
done

case "$SUB" in
  create | setup | run | babysit | status | stop | delete) ;;
  "") die_usage "missing COMMAND: create, setup, run, babysit, status, stop or delete" ;;
  *) die_usage "unknown COMMAND '$SUB': use create, setup, run, babysit, status, stop or delete" ;;
esac
[[ -n "$NAME" ]] || die_usage "--name is required (or set TPU_NAME)"
[[ -n "$ZONE" ]] || die_usage "--zone is required (or set TPU_ZONE)"
QR_ID="${QR_ID:-$NAME}"
if [[ "$SUB" == create || "$SUB" == babysit ]]; then
  [[ -n "$TYPE" ]] || die_usage "--accelerator-type is required for $SUB (e.g. v4-8, v5litepod-8)"
  if [[ -z "$RUNTIME" ]]; then
    case "$TYPE" in
      v4-*) RUNTIME="tpu-ubuntu2204-base" ;;
      v5litepod-* | v5e-*) RUNTIME="v2-alpha-tpuv5-lite" ;;
      v5p-*) RUNTIME="v2-alpha-tpuv5" ;;
      v6e-*) RUNTIME="v2-alpha-tpuv6e" ;;
      *) die_usage "--runtime-version is required for accelerator type $TYPE" ;;
    esac
  fi
fi
if [[ "$SUB" == run || "$SUB" == babysit ]]; then
  ((${#CMD[@]})) || die_usage "$SUB needs the command to run after --, e.g. -- jaxlm train --config ..."
fi
((MAX_ATTEMPTS >= 1)) || die_usage "--max-attempts must be at least 1"
if [[ "$SUB" == setup || "$SUB" == babysit ]] && [[ ! -d "$REPO" ]] &&
  [[ ! "$REPO" =~ :// && ! "$REPO" =~ ^git@ ]]; then
  die_usage "--repo $REPO is neither a directory nor a git URL"
fi

LOC=(--zone "$ZONE")
[[ -z "$PROJECT" ]] || LOC+=(--project "$PROJECT")
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------------- actions
# Sets STATE to the queued resource's state (ACTIVE, WAITING_FOR_RESOURCES, SUSPENDED, ...),
# MISSING (no such queued resource) or UNKNOWN (gcloud failed otherwise).
# Dry run: prints the describe command and says MISSING.
get_qr_state() {
  if is_dry; then
    run gcloud compute tpus queued-resources describe "$QR_ID" "${LOC[@]}" \
      --format='value(state.state)'
    STATE=MISSING
  elif STATE="$(gcloud compute tpus queued-resources describe "$QR_ID" "${LOC[@]}" \
    --format='value(state.state)' 2>"$TMP/err")"; then
    STATE="${STATE:-UNKNOWN}"
  elif grep -qiE 'NOT_FOUND|not found' "$TMP/err"; then
    STATE=MISSING
  else
    cat "$TMP/err" >&2
    STATE=UNKNOWN
  fi
}

# Sets NODE to the TPU VM's state: READY, PREEMPTED, TERMINATED, CREATING, ..., MISSING or UNKNOWN.
get_node_state() {
  if NODE="$(gcloud compute tpus tpu-vm describe "$NAME" "${LOC[@]}" \
    --format='value(state)' 2>"$TMP/err")"; then
    NODE="${NODE:-UNKNOWN}"
  elif grep -qiE 'NOT_FOUND|not found' "$TMP/err"; then
    NODE=MISSING
  else
    cat "$TMP/err" >&2
    NODE=UNKNOWN
  fi
}

create_qr() {
  local cmd=(gcloud compute tpus queued-resources create "$QR_ID" --node-id "$NAME" "${LOC[@]}"
    --accelerator-type "$TYPE" --runtime-version "$RUNTIME")
  [[ "$SPOT" != 1 ]] || cmd+=(--spot)
  if ((${#CREATE_FLAGS[@]})); then cmd+=("${CREATE_FLAGS[@]}"); fi  # bash 3.2 (macOS): no empty "${a[@]}"
  run "${cmd[@]}"
}

delete_qr() {
  run gcloud compute tpus queued-resources delete "$QR_ID" "${LOC[@]}" --force --quiet
}

# Waits until the queued resource is ACTIVE; fails if it ends up FAILED, SUSPENDED or missing.
wait_active() {
  if is_dry; then
    get_qr_state
    return 0
  fi
  while :; do
    get_qr_state
    case "$STATE" in
      ACTIVE) log "queued resource $QR_ID is ACTIVE"; return 0 ;;
      FAILED | SUSPENDING | SUSPENDED | DELETING | MISSING)
        log "queued resource $QR_ID is $STATE"
        return 1
        ;;
      *) log "queued resource $QR_ID is $STATE; checking again in ${POLL}s"; sleep "$POLL" ;;
    esac
  done
}

# The remote command for `setup`, run on every worker.
setup_script() {
  local fetch clone=(git clone --depth 1)
  if [[ -d "$REPO" ]]; then
    fetch="rm -rf $REMOTE_DIR && mkdir -p $REMOTE_DIR && tar -xzf jaxlm.tar.gz -C $REMOTE_DIR"
  else
    local url="${REPO#git+}"
    [[ -z "$REF" ]] || clone+=(--branch "$REF")
    fetch="rm -rf $REMOTE_DIR && $(shell_join "${clone[@]}" "$url") $REMOTE_DIR"
  fi
  printf '%s' "set -euo pipefail; " \
    "command -v uv >/dev/null 2>&1 || curl -LsSf https://astral.sh/uv/install.sh | sh; " \
    "export PATH=\"\$HOME/.local/bin:\$PATH\"; " \
    "$fetch; " \
    "[ -x $REMOTE_VENV/bin/python ] || uv venv --python $(quote_arg "$PYTHON_VERSION") $REMOTE_VENV; " \
    "cd $REMOTE_DIR && uv pip install --python $REMOTE_VENV/bin/python -e \".[tpu]\"; " \
    "$REMOTE_VENV/bin/python -c \"import jax; print(jax.devices())\""
}

setup_node() {
  if [[ -d "$REPO" ]]; then
    run tar -C "$REPO" -czf "$TMP/jaxlm.tar.gz" --exclude=.git --exclude=.venv --exclude=runs \
      --exclude=__pycache__ --exclude='*.egg-info' --exclude=.pytest_cache --exclude=build . ||
      return
    run gcloud compute tpus tpu-vm scp "$TMP/jaxlm.tar.gz" "$NAME:jaxlm.tar.gz" "${LOC[@]}" \
      --worker=all || return
  fi
  run gcloud compute tpus tpu-vm ssh "$NAME" "${LOC[@]}" --worker=all --command="$(setup_script)"
}

# Runs CMD on every worker; returns its exit status.
run_command() {
  run gcloud compute tpus tpu-vm ssh "$NAME" "${LOC[@]}" --worker=all \
    --command="cd $REMOTE_DIR && . $REMOTE_VENV/bin/activate && exec $(shell_join "${CMD[@]}")"
}

babysit() {
  local attempt=0 need_setup=1 rc
  while ((attempt < MAX_ATTEMPTS)); do
    attempt=$((attempt + 1))
    ((attempt == 1)) || { log "retrying in ${RETRY_DELAY}s"; sleep "$RETRY_DELAY"; }
    log "attempt $attempt of $MAX_ATTEMPTS"
    get_qr_state
    NODE=""
    [[ "$STATE" != ACTIVE ]] || get_node_state
    if is_dry; then
      log "dry run: showing one attempt, as if the TPU VM had to be created"
    else
      log "queued resource $QR_ID: $STATE${NODE:+, TPU VM $NAME: $NODE}"
    fi
    case "$STATE/$NODE" in
      ACTIVE/READY | ACTIVE/UNKNOWN) ;;
      ACTIVE/PREEMPTED | ACTIVE/TERMINATED | ACTIVE/STOPPED | ACTIVE/MISSING | \
        FAILED/ | SUSPENDING/ | SUSPENDED/ | MISSING/)
        [[ "$STATE" == MISSING ]] || delete_qr || log "delete failed; trying to create anyway"
        create_qr || continue
        wait_active || continue
        need_setup=1
        ;;
      ACTIVE/*) continue ;;  # starting, repairing, ...: check again after the delay
      UNKNOWN/) continue ;;
      *) wait_active || continue; need_setup=1 ;;  # CREATING, WAITING_FOR_RESOURCES, ...
    esac
    if ((need_setup)); then
      setup_node || { log "setup failed"; continue; }
      need_setup=0
    fi
    rc=0
    run_command || rc=$?
    if is_dry; then
      return 0
    elif ((rc == 0)); then
      log "the command exited 0 on every worker: done"
      ((DELETE_ON_SUCCESS == 0)) || delete_qr
      return 0
    fi
    if ((rc == 2 || rc == 3)); then  # jaxlm: bad config/data (2), NaN losses (3): rerunning won't help
      log "the command exited $rc: not retrying"
      return "$rc"
    fi
    log "the command exited $rc"
  done
  log "giving up after $MAX_ATTEMPTS attempts"
  return 1
}

case "$SUB" in
  create)
    create_qr
    wait_active
    ;;
  setup) setup_node ;;
  run) run_command ;;
  babysit) babysit ;;
  status)
    run gcloud compute tpus queued-resources describe "$QR_ID" "${LOC[@]}"
    run gcloud compute tpus tpu-vm describe "$NAME" "${LOC[@]}"
    ;;
  stop)
    # [j]axlm: the pattern does not match this very command line.
    run gcloud compute tpus tpu-vm ssh "$NAME" "${LOC[@]}" --worker=all \
      --command='pkill -TERM -f "[j]axlm train" || true'
    ;;
  delete) delete_qr ;;
esac
