#!/usr/bin/env bash
# `jaxlm train` on one local GPU, with sensible XLA/CUDA environment. See launch/README.md.
set -euo pipefail

PROG="gpu_local.sh"

usage() {
  cat <<'EOF'
Usage: launch/gpu_local.sh [--gpu ID] [--mem-fraction F] [--dry-run] [--] --config FILE --workdir DIR [jaxlm train args...]

Runs `jaxlm train ARGS...` on one GPU of this machine; every argument the script does not know
is passed to `jaxlm train` (so are all arguments after --).

Options:
  --gpu ID            the GPU to use (sets CUDA_VISIBLE_DEVICES=ID); default: all visible GPUs
                      [CUDA_VISIBLE_DEVICES]
  --mem-fraction F    share of GPU memory JAX preallocates (XLA_PYTHON_CLIENT_MEM_FRACTION,
                      default 0.9; JAX's own default is 0.75)
  --dry-run           print the command, prefixed with "+ ", and run nothing [DRY_RUN=1]
  -h, --help          this help

Environment: JAXLM_CMD replaces `jaxlm` (e.g. JAXLM_CMD="python -m jaxlm").
Install first: pip install -e ".[cuda]"   (jax[cuda12])

The exit status is jaxlm's: 0 done, 2 bad config, 75 stopped by SIGTERM after saving a
checkpoint (run the same command again to resume).

Example:
  launch/gpu_local.sh --gpu 0 --config configs/gpt2_124m.py --workdir runs/gpt2 \
      --config.data.source=text:/data/books
EOF
}

# shellcheck source=launch/shell_quoting.sh
source "$(dirname "${BASH_SOURCE[0]}")/shell_quoting.sh"

DRY_RUN="${DRY_RUN:-0}"
if [[ "$DRY_RUN" != 0 ]]; then DRY_RUN=1; fi
GPU="${CUDA_VISIBLE_DEVICES:-}"
MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}"
ARGS=()
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) DRY_RUN=1 ;;
    --gpu=*) GPU="${1#*=}" ;;
    --gpu) [[ $# -ge 2 ]] || die_usage "--gpu needs a value"; GPU="$2"; shift ;;
    --mem-fraction=*) MEM_FRACTION="${1#*=}" ;;
    --mem-fraction) [[ $# -ge 2 ]] || die_usage "--mem-fraction needs a value"; MEM_FRACTION="$2"; shift ;;
    --) shift; ARGS+=("$@"); break ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done

has_flag() {  # has_flag --config ARGS...: is --config X or --config=X among ARGS?
  local flag="$1" a
  shift
  for a in "$@"; do [[ "$a" != "$flag" && "$a" != "$flag="* ]] || return 0; done
  return 1
}
has_flag --config "${ARGS[@]:-}" || die_usage "missing --config FILE (e.g. --config configs/gpt2_124m.py)"
has_flag --workdir "${ARGS[@]:-}" || die_usage "missing --workdir DIR (e.g. --workdir runs/gpt2)"
[[ "$MEM_FRACTION" =~ ^(0?\.[0-9]+|1(\.0*)?)$ ]] || die_usage "--mem-fraction must be in (0, 1], got '$MEM_FRACTION'"
[[ -z "$GPU" || "$GPU" =~ ^[0-9A-Za-z,-]+$ ]] || die_usage "--gpu must be a GPU index or UUID, got '$GPU'"

read -r -a JAXLM <<<"${JAXLM_CMD:-jaxlm}"
ENV=(XLA_PYTHON_CLIENT_MEM_FRACTION="$MEM_FRACTION")
[[ -z "$GPU" ]] || ENV+=(CUDA_VISIBLE_DEVICES="$GPU")
CMD=(env "${ENV[@]}" "${JAXLM[@]}" train "${ARGS[@]}")

if [[ "$DRY_RUN" == 1 ]]; then
  echo "+ $(shell_join "${CMD[@]}")"
  exit 0
fi
command -v "${JAXLM[0]}" >/dev/null ||
  { echo "$PROG: error: ${JAXLM[0]} not found; install jaxlm: pip install -e \".[cuda]\"" >&2; exit 127; }
echo "+ $(shell_join "${CMD[@]}")" >&2
exec "${CMD[@]}"
