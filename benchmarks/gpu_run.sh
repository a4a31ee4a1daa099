#!/usr/bin/env bash
# The whole GPU run in one go, on a bare machine that has python3 with JAX (CUDA), Flax, optax,
# orbax, tokenizers, numpy, torch and transformers, and no network. Run from a checkout that
# holds what benchmarks/gpu_prepare.sh made: .whl/ (grain, tensorflow-datasets, tensorboardX,
# ... as wheels) and .gpu/corpus.tar.xz (the Gutenberg books).
#
#   bash benchmarks/gpu_run.sh               # every stage that fits BUDGET_S (570 s): all but
#                                            # compare, about 6.5 minutes on an H100
#   STAGES=compare bash benchmarks/gpu_run.sh    # the comparison alone, about 8.5 minutes
#   SMOKE=1 bash benchmarks/gpu_run.sh       # every stage at toy size on the CPU (2-4 minutes)
#
# Stages, each bounded with `timeout` (seconds expected on an H100 / limit):
#   setup         install .whl/ into /tmp/site, record versions (env.json)          15 / 180
#   corpus        unpack .gpu/corpus.tar.xz into .corpus/                            5 / 120
#   kernel_tests  pytest tests/model/test_kernels.py with JAX on the GPU            60 / 240
#   kernel_check  benchmarks/gpu_kernels.py: cuDNN vs XLA in bf16 (kernels.jsonl)    40 / 180
#   peers         benchmarks/peers.py --device cuda: GPT-2 124M 16x1024, BERT-base
#                 MLM 256x128, bf16, against Hugging Face (peers.jsonl)             240 / 420
#   compare       jaxlm compare --config compare/gpu (compare_gpu.tar.gz)           480 / 570
# setup always runs, corpus whenever compare does. A stage whose expected time does not fit what
# is left of BUDGET_S is skipped, not started; a failed stage is recorded and the next one runs.
# The summary table is printed last; the exit status is 1 when a stage failed.
#
# Environment: OUT (the output folder, default .gpu-out/; at most 8 files land there),
# WORK (scratch: the compare workdir, token cache, logs; default /tmp/jaxlm-gpu-run, kept, so a
# second run on the same machine resumes the comparison), BUDGET_S (default 570), STAGES
# (comma-separated, default all), PYTHON (default python3), SMOKE=1.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$REPO/benchmarks/gpu_run.sh"
cd "$REPO"
export SMOKE=${SMOKE:-0}
export PY=${PYTHON:-python3}
export OUT=${OUT:-$REPO/.gpu-out}
if [ "$SMOKE" = 1 ]; then
  export WORK=${WORK:-/tmp/jaxlm-gpu-run-smoke}
else
  export WORK=${WORK:-/tmp/jaxlm-gpu-run}
fi
export SITE=${SITE:-/tmp/site}
export CORPUS_ARCHIVE=${CORPUS_ARCHIVE:-$REPO/.gpu/corpus.tar.xz}
ALL_STAGES="setup,corpus,kernel_tests,kernel_check,peers,compare"
STAGES=${STAGES:-$ALL_STAGES}
BUDGET_S=${BUDGET_S:-570}
RESERVE_S=15  # packing the comparison and printing the summary (a few seconds)

# -- one stage, run in its own process (`bash gpu_run.sh __stage NAME`) -------------------------

stage_setup() {
  if [ "$SMOKE" = 1 ]; then
    echo "SMOKE: no wheels installed (they are for the GPU machine's Python)"
  elif compgen -G ".whl/*.whl" >/dev/null; then
    ls .whl
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" .whl/*.whl
  else
    echo "no .whl/: nothing installed (run benchmarks/gpu_prepare.sh and carry .whl)"
  fi
  if command -v nvidia-smi >/dev/null; then nvidia-smi -L; nvidia-smi; else echo "no nvidia-smi"; fi
  "$PY" - "$OUT/env.json" <<'EOF'
import importlib, json, os, platform, subprocess, sys
env = {"python": platform.python_version(), "executable": sys.executable,
       "smoke": os.environ["SMOKE"] == "1", "hostname": platform.node()}
for name in ("jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "numpy", "tokenizers", "grain",
             "tensorboardX", "torch", "transformers"):
  try:
    env[name] = importlib.import_module(name).__version__
  except Exception as e:  # a missing package is recorded, not fatal here
    env[name] = f"missing ({type(e).__name__}: {e})"[:200]
try:
  import jax
  env["devices"] = [d.device_kind for d in jax.devices()]
  env["backend"] = jax.default_backend()
  from jax._src.lib import cuda_versions  # noqa: PLC0415
  env["cudnn"] = cuda_versions.cudnn_get_version() if cuda_versions else None
except Exception as e:
  env.setdefault("devices", f"unavailable ({type(e).__name__}: {e})"[:300])
try:
  import torch
  env["torch_cuda"], env["torch_cudnn"] = torch.version.cuda, torch.backends.cudnn.version()
except Exception:
  pass
try:
  env["nvidia_smi"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                     timeout=30).stdout.strip()
  env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=30).stdout.strip()
except Exception:
  env["nvidia_smi"] = None
try:  # the checkout's own commit where it is a git clone, else what gpu_prepare.sh recorded
  env["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                 timeout=30).stdout.strip() or None
except Exception:
  env["commit"] = None
if not env["commit"] and os.path.exists(os.path.join(".gpu", "commit.txt")):
  lines = open(os.path.join(".gpu", "commit.txt")).read().splitlines()
  env["commit"] = lines[0] + " (.gpu/commit.txt)"
  env["uncommitted"] = lines[1:]
env["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
json.dump(env, open(sys.argv[1], "w"), indent=1)
print(json.dumps(env, indent=1))
EOF
  # What every later stage imports, from where.
  "$PY" -c "import jaxlm, grain, tensorboardX, jax; from jaxlm.config import named_configs; print('jaxlm from', jaxlm.__file__, 'configs', named_configs()); print('jax devices', jax.devices())"
}

stage_corpus() {
  local archive=$CORPUS_ARCHIVE
  if [ "$SMOKE" = 1 ]; then  # a stand-in archive, made the same way, from the embedded corpus
    archive=$WORK/smoke-corpus.tar.xz
    tar -C "$REPO/jaxlm/corpus" -cJf "$archive" inaugural
  fi
  if [ ! -f "$archive" ]; then
    echo "no $archive: run benchmarks/gpu_prepare.sh here and carry .gpu"; return 2
  fi
  mkdir -p "$CORPUS_ROOT"
  "$PY" - "$archive" "$CORPUS_ROOT" <<'EOF'
import sys, tarfile, time
from pathlib import Path
start = time.perf_counter()
with tarfile.open(sys.argv[1]) as tar:
  try:
    tar.extractall(sys.argv[2], filter="data")
  except TypeError:  # Python < 3.11.4
    tar.extractall(sys.argv[2])
root = Path(sys.argv[2])
for folder in sorted(p for p in root.iterdir() if p.is_dir()):
  files = [p for p in folder.rglob("*") if p.is_file()]
  print(f"{folder}: {len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB")
print(f"unpacked {sys.argv[1]} in {time.perf_counter() - start:.1f} s")
EOF
}

stage_kernel_tests() {
  # tests/conftest.py defaults JAX_PLATFORMS to cpu, which would skip every cudnn case: name
  # the platform. -v: one line per test (the summary counts cudnn's).
  JAX_PLATFORMS=$JAX_PLATFORM "$PY" -m pytest -p no:cacheprovider -o addopts= -v -rs \
    tests/model/test_kernels.py
}

stage_kernel_check() {
  local args=()
  [ "$SMOKE" = 1 ] && args=(--tiny)
  JAX_PLATFORMS=$JAX_PLATFORM "$PY" benchmarks/gpu_kernels.py "${args[@]}" >"$OUT/kernels.jsonl"
}

stage_peers() {
  if [ "$SMOKE" = 1 ]; then
    "$PY" benchmarks/peers.py --device cpu --tiny --steps 2 --warmup 1 >"$OUT/peers.jsonl"
  else
    "$PY" benchmarks/peers.py --device cuda --steps 50 --warmup 5 >"$OUT/peers.jsonl"
  fi
}

stage_compare() {
  local args=()
  if [ "$SMOKE" = 1 ]; then
    args=(--config.pretrain.data.source="text:$CORPUS_ROOT/inaugural"
          --config.pretrain.steps=4 --config.pretrain.log_every=2 --config.pretrain.eval_every=2
          --config.pretrain.batch_size=4 --config.pretrain.seq_len=64
          --config.pretrain.model.max_seq_len=64 --config.pretrain.model.num_layers=1
          --config.pretrain.model.embed_dim=64 --config.pretrain.model.num_heads=2
          --config.pretrain.model.mlp_dim=128 --config.pretrain.model.dtype=float32
          --config.pretrain.data.vocab_size=512 --config.pretrain.optimizer.warmup_steps=1
          --config.zero_shot_sample=1 --config.finetune.seeds=1 --config.finetune.epochs=1
          --config.finetune.max_train_examples=64 --config.finetune.max_eval_examples=64)
  fi
  JAX_PLATFORMS=$JAX_PLATFORM "$PY" -m jaxlm compare --config compare/gpu \
    --workdir "$WORK/compare_gpu" --quiet "${args[@]}"
}

if [ "${1:-}" = __stage ]; then
  "stage_$2"
  exit
fi

# -- the run -------------------------------------------------------------------------------------

now() { date +%s; }
T0=$(now)
mkdir -p "$OUT" "$WORK/logs"
[ "$SMOKE" = 1 ] && rm -rf "$WORK/compare_gpu" "$WORK/cache"
LOG=$OUT/gpu_run.log
STAGE_FILE=$OUT/stages.jsonl
: >"$STAGE_FILE"
if [ "$SMOKE" = 1 ]; then
  export JAX_PLATFORM=cpu CORPUS_ROOT=$WORK/corpus
else
  export JAX_PLATFORM=cuda CORPUS_ROOT=$REPO/.corpus
fi
export PYTHONUNBUFFERED=1 JAXLM_CACHE_DIR=$WORK/cache
# Nothing is installed here: the checkout is on the path, and jaxlm registers its top-level
# configs/ folder as jaxlm.configs itself when it is not installed (jaxlm/config/loading.py).
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
[ "$SMOKE" = 1 ] || export PYTHONPATH="$SITE:$PYTHONPATH"

want() {
  [[ ",$STAGES," == *",$1,"* ]] || [ "$1" = setup ] \
    || { [ "$1" = corpus ] && [[ ",$STAGES," == *",compare,"* ]]; }
}
FAILED=0

record() {  # stage status rc seconds limit note
  printf '{"stage": "%s", "status": "%s", "rc": %s, "seconds": %s, "limit_s": %s, "note": "%s"}\n' \
    "$1" "$2" "$3" "$4" "$5" "$6" >>"$STAGE_FILE"
}

run_stage() {  # name expected_s limit_s
  local name=$1 expect=$2 limit=$3 left start rc status
  want "$name" || return 0
  left=$(( BUDGET_S - ($(now) - T0) - RESERVE_S ))
  if [ "$left" -lt "$expect" ]; then
    echo "== $name: skipped, ${left}s left of the budget, ${expect}s expected" | tee -a "$LOG"
    record "$name" skipped null 0 "$limit" "budget: ${left}s left, ${expect}s expected"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s) $(date -u +%FT%TZ)" | tee -a "$LOG"
  start=$(now)
  set +e
  timeout -k 15 "$limit" bash "$SELF" __stage "$name" >"$WORK/logs/$name.log" 2>&1
  rc=$?
  set -e
  cat "$WORK/logs/$name.log" >>"$LOG"
  case $rc in
    0) status=ok ;;
    124|137) status=timeout ;;
    *) status=failed ;;
  esac
  if [ "$rc" != 0 ]; then
    FAILED=1
    echo "-- $name: $status (rc $rc); its last lines:"
    tail -n 25 "$WORK/logs/$name.log" | cut -c1-300
  fi
  echo "== $name: $status, rc $rc, $(( $(now) - start ))s" | tee -a "$LOG"
  record "$name" "$status" "$rc" "$(( $(now) - start ))" "$limit" ""
}

echo "gpu_run: SMOKE=$SMOKE OUT=$OUT WORK=$WORK BUDGET_S=$BUDGET_S STAGES=$STAGES" | tee "$LOG"
if [ "$SMOKE" = 1 ]; then
  run_stage setup 5 120
  run_stage corpus 5 60
  run_stage kernel_tests 20 180
  run_stage kernel_check 10 120
  run_stage peers 30 180
  run_stage compare 40 300
else
  run_stage setup 15 180
  run_stage corpus 5 120
  run_stage kernel_tests 60 240
  run_stage kernel_check 40 180
  run_stage peers 240 420
  run_stage compare 480 570
fi

# What comes back: the comparison's workdir without its checkpoints, in one file.
if [ -d "$WORK/compare_gpu" ]; then
  tar -C "$WORK" --exclude='checkpoints' -czf "$OUT/compare_gpu.tar.gz" compare_gpu || FAILED=1
  [ -f "$WORK/compare_gpu/report.md" ] && cp "$WORK/compare_gpu/report.md" "$OUT/compare_report.md"
fi
echo "== total $(( $(now) - T0 ))s" | tee -a "$LOG"
"$PY" "$REPO/benchmarks/gpu_summary.py" "$OUT" "$WORK/compare_gpu" 2>&1 | tee -a "$LOG" \
  || cat "$STAGE_FILE"
exit "$FAILED"
