"""jaxlm's CPU training step next to Hugging Face's in torch eager, side by side in one run.

  pip install -e '.[bench]'                     # torch and transformers
  python benchmarks/cpu_step.py                 # the main job's shape, 5 rounds of 20 steps
  python benchmarks/cpu_step.py --rounds 3 --steps 5 --config.model.position=rope

The shape is the main job's (`configs/tiny.py` as `compare/tiny` trains it: batch 16 x 128,
width 128, 2 layers, 4 heads, MLP 512, a 2,048-token vocabulary, float32), with learned
positions so that `GPT2LMHeadModel` (sdpa attention, eager, AdamW with the same lr, betas,
epsilon and weight decay, global-norm clipping, no dropout) computes the same model. jaxlm runs
its `jaxlm train` step (`build_trainer`: the same jitted, donating step, on the mesh the CLI
would make) on random ordinary tokens already on the device.

Each side runs in its own worker process, built and warmed up once; the workers then take turns
(one round: one side runs `--steps` steps while the other waits on its stdin), so both see the
same machine load over the run. A shared, noisy machine moves single figures by 20-30%; the
ratio of the medians over the rounds is the figure to quote, with every round's ratio beside it.

`import jaxlm` keeps freed host memory for reuse on the CPU (jaxlm/host_memory.py); the torch
worker imports jaxlm's config too, so it runs with `JAXLM_MALLOC=system` (torch with glibc's
defaults, as torch users run it) unless `--torch-malloc jaxlm` gives it jaxlm's settings.

Prints one JSON line per round and a summary line; `--out FILE` also writes the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAPE = {"objective": "clm", "data.vocab_size": "2048", "model.position": "learned",
         "model.dropout": "0.0"}


def jaxlm_worker(overrides: dict[str, str], warmup: int):
  import jax  # noqa: PLC0415

  from jaxlm import sharding  # noqa: PLC0415
  from jaxlm.config import load_config  # noqa: PLC0415
  from jaxlm.train.bench import synthetic_batches, with_synthetic_tokenizer  # noqa: PLC0415
  from jaxlm.train.trainer import build_trainer  # noqa: PLC0415

  config, special = with_synthetic_tokenizer(load_config("tiny", overrides).validate())
  mesh = sharding.make_mesh(config.mesh)
  trainer = build_trainer(config, mesh, special)
  state = trainer.state
  with jax.set_mesh(mesh):
    batches = synthetic_batches(config, trainer.batch_sh)

  def run(n: int) -> float:
    nonlocal state
    with jax.set_mesh(mesh):
      for i in range(n):
        state, metrics = trainer.train_step(state, batches[i % len(batches)])
      jax.block_until_ready((state, metrics))

  from jaxlm import host_memory  # noqa: PLC0415

  info = {"framework": "jax", "version": jax.__version__, "devices": jax.device_count(),
          "malloc": host_memory.status,
          "mesh": dict(mesh.shape), "xla_flags": os.environ.get("XLA_FLAGS", ""),
          "params": sum(x.size for x in jax.tree.leaves(state.params))}
  return config, run, warmup, info


def torch_worker(overrides: dict[str, str], warmup: int):
  import torch  # noqa: PLC0415
  import transformers  # noqa: PLC0415

  from jaxlm.config import load_config  # noqa: PLC0415
  from jaxlm.train.bench import with_synthetic_tokenizer  # noqa: PLC0415

  config, _ = with_synthetic_tokenizer(load_config("tiny", overrides).validate())
  m, o = config.model, config.optimizer
  gelu = {"gelu_tanh": "gelu_new", "gelu_exact": "gelu"}  # GPT2Config's names
  if m.position != "learned" or m.norm != "pre" or m.activation not in gelu:
    raise SystemExit("cpu_step.py: GPT2LMHeadModel has learned positions, pre-LN and GELU; "
                     f"got position={m.position} norm={m.norm} activation={m.activation}")
  torch.manual_seed(0)
  model = transformers.GPT2LMHeadModel._from_config(transformers.GPT2Config(
    vocab_size=m.vocab_size, n_positions=m.max_seq_len, n_embd=m.embed_dim,
    n_layer=m.num_layers, n_head=m.num_heads, n_inner=m.mlp_dim,
    activation_function=gelu[m.activation],
    layer_norm_epsilon=m.layer_norm_eps, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    bos_token_id=None, eos_token_id=None), attn_implementation="sdpa").train()
  params = list(model.parameters())
  groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": o.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
  opt = torch.optim.AdamW(groups, lr=o.lr, betas=(o.b1, o.b2), eps=o.eps)
  gen = torch.Generator().manual_seed(0)
  batches = [torch.randint(5, m.vocab_size, (config.batch_size, config.seq_len), generator=gen)
             for _ in range(4)]

  def run(n: int) -> None:
    for i in range(n):
      ids = batches[i % len(batches)]
      model(input_ids=ids, labels=ids).loss.backward()
      torch.nn.utils.clip_grad_norm_(params, o.grad_clip)
      opt.step()
      opt.zero_grad(set_to_none=True)

  from jaxlm import host_memory  # noqa: PLC0415

  info = {"framework": "torch", "version": torch.__version__, "malloc": host_memory.status,
          "transformers": transformers.__version__, "threads": torch.get_num_threads(),
          "params": sum(p.numel() for p in params)}
  return config, run, warmup, info


def cpu_description() -> dict[str, object]:
  """The host CPU's model and vector ISA (from /proc/cpuinfo on Linux): the ratio depends on it
  (AVX-512 or AVX2 alone moves XLA's and torch's kernels differently, benchmarks/README.md)."""
  try:
    text = Path("/proc/cpuinfo").read_text()
  except OSError:
    return {"model": platform.processor() or platform.machine()}
  fields = dict(re.findall(r"^(model name|cpu family|model|flags)\s*:\s*(.*)$", text, re.M))
  flags = set(fields.get("flags", "").split())
  return {"model": fields.get("model name", platform.machine()),
          "family": fields.get("cpu family"), "model_number": fields.get("model"),
          "isa": [f for f in ("avx512f", "avx512_bf16", "avx2", "fma") if f in flags]}


def serve(side: str, overrides: dict[str, str], warmup: int) -> None:
  """Worker: build, warm up, report; then run N steps per stdin line and print the seconds."""
  config, run, warmup, info = (jaxlm_worker if side == "jaxlm" else torch_worker)(overrides, warmup)
  run(warmup)
  print(json.dumps({**info, "batch": config.batch_size, "seq": config.seq_len}), flush=True)
  for line in sys.stdin:
    start = time.perf_counter()
    run(int(line))
    print(time.perf_counter() - start, flush=True)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--rounds", type=int, default=5, help="turns each side takes")
  parser.add_argument("--steps", type=int, default=20, help="timed steps per turn")
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
  parser.add_argument("--out", help="also write the summary JSON here")
  parser.add_argument("--torch-malloc", choices=("system", "jaxlm"), default="system",
                      help="torch with glibc's malloc defaults, or with jaxlm's (host_memory.py)")
  parser.add_argument("--worker", choices=("jaxlm", "torch"), help=argparse.SUPPRESS)
  args, rest = parser.parse_known_args(argv)
  overrides = dict(SHAPE)
  for arg in rest:  # --config.KEY=VALUE, as the CLI takes them
    if not arg.startswith("--config.") or "=" not in arg:
      parser.error(f"unrecognized argument {arg!r} (allowed: --config.KEY=VALUE)")
    key, value = arg[len("--config."):].split("=", 1)
    overrides[key] = value
  if args.worker:
    serve(args.worker, overrides, args.warmup)
    return
  if min(args.rounds, args.steps, args.warmup) < 1:
    parser.error("--rounds, --steps and --warmup must be >= 1")

  workers, infos = {}, {}
  for side in ("jaxlm", "torch"):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    if side == "torch" and args.torch_malloc == "system":
      env["JAXLM_MALLOC"] = "system"
    workers[side] = subprocess.Popen(
      [sys.executable, __file__, "--worker", side, "--warmup", str(args.warmup), *rest],
      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    line = workers[side].stdout.readline()  # built and warmed up, one at a time
    if not line:
      raise SystemExit(f"cpu_step.py: the {side} worker failed (see stderr above)")
    infos[side] = json.loads(line)
  batch, seq = infos["jaxlm"]["batch"], infos["jaxlm"]["seq"]
  rates = {"jaxlm": [], "torch": []}
  for r in range(args.rounds):
    for side in (("jaxlm", "torch") if r % 2 == 0 else ("torch", "jaxlm")):
      workers[side].stdin.write(f"{args.steps}\n")
      workers[side].stdin.flush()
      seconds = float(workers[side].stdout.readline())
      rates[side].append(args.steps * batch * seq / seconds)
      time.sleep(0.5)  # let the other side's threads settle
    print(json.dumps({"round": r, "jaxlm_tokens_per_s": rates["jaxlm"][-1],
                      "torch_tokens_per_s": rates["torch"][-1],
                      "ratio": rates["jaxlm"][-1] / rates["torch"][-1]}), flush=True)
  for w in workers.values():
    w.stdin.close()
    w.wait()
  median = {side: statistics.median(v) for side, v in rates.items()}
  summary = {
    "shape": {"batch": batch, "seq": seq, **overrides}, "rounds": args.rounds,
    "steps_per_round": args.steps, "host": platform.processor() or platform.machine(),
    "cpu": cpu_description(), "cpus": os.cpu_count(), "jaxlm": infos["jaxlm"],
    "torch": infos["torch"],
    "jaxlm_tokens_per_s": median["jaxlm"], "torch_tokens_per_s": median["torch"],
    "ratio": median["jaxlm"] / median["torch"],
    "round_ratios": [j / t for j, t in zip(rates["jaxlm"], rates["torch"])],
  }
  print(json.dumps(summary), flush=True)
  if args.out:
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
  main()
