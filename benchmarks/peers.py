"""jaxlm's training throughput next to Hugging Face's, on the same device and the same shapes.

  pip install -e '.[bench]'                       # torch and transformers
  python benchmarks/peers.py --device cuda        # GPT-2 124M 16x1024, BERT-base 256x128
  python benchmarks/peers.py --device cpu --tiny --steps 2   # smoke test: 2 layers, width 128

Peers: `GPT2LMHeadModel` and `BertForMaskedLM` (15% of positions labelled), sdpa attention, bf16
autocast, torch.compile and fused AdamW with global-norm clipping, as nanoGPT trains. Each model
is built from the jaxlm config it is compared with (configs/gpt2_124m.py, configs/bert_base.py),
so both sides have the same layers, widths, vocabulary, activation, norm placement and dropout.
jaxlm runs in a fresh subprocess (`jaxlm.bench.bench`), so neither framework's allocator holds
memory the other needs and each peak-memory figure is its own.

Prints one JSON line per peer, one per jaxlm run and one `jaxlm/peer` ratio line per pair. On
CPU, torch.compile and bf16 autocast are off unless asked for (`--compile on --autocast on`),
and jaxlm then runs in float32 too; every line says what was switched off and why.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# name, jaxlm config, Hugging Face class, batch, seq
PAIRS = (
  ("hf_gpt2", "configs/gpt2_124m.py", "GPT2LMHeadModel", 16, 1024),
  ("hf_bert", "configs/bert_base.py", "BertForMaskedLM", 256, 128),
)
# --tiny: a smoke test of the whole comparison in well under a minute on two CPU cores. The
# vocabulary shrinks too: at 50k entries the output projection alone is most of a tiny step.
TINY = {"model.num_layers": "2", "model.embed_dim": "128", "model.num_heads": "2",
        "model.mlp_dim": "512", "seq_len": "128", "batch_size": "4", "data.vocab_size": "4096"}
MASK_ID, FIRST_ORDINARY_ID = 4, 5


def jaxlm_config(path: str, args: argparse.Namespace, batch: int, seq: int):
  from jaxlm.config import load_config  # noqa: PLC0415 (jax loads only where it is used)
  from jaxlm.train.bench import with_synthetic_tokenizer  # noqa: PLC0415
  overrides = {"batch_size": str(batch), "seq_len": str(seq)}
  if args.tiny:
    overrides.update(TINY)
  if not args.use_autocast:
    overrides["model.dtype"] = "float32"  # the same precision as the peer
  # a shipped config name or a file; the embedding table sized as training would size it
  return with_synthetic_tokenizer(load_config(path, overrides))[0]


def settings(args: argparse.Namespace) -> list[str]:
  """Resolves the `auto` switches for the device; returns why anything is off."""
  notes = []
  on_cpu = args.device == "cpu"
  args.use_compile = args.compile == "on" or (args.compile == "auto" and not on_cpu)
  args.use_autocast = args.autocast == "on" or (args.autocast == "auto" and not on_cpu)
  if args.compile == "auto" and on_cpu:
    notes.append("torch.compile off on cpu: inductor's C++ build takes longer than a smoke test "
                 "(--compile on to force)")
  if args.autocast == "auto" and on_cpu:
    notes.append("bf16 autocast off on cpu: most CPUs emulate bf16 matmuls; both sides run "
                 "float32 (--autocast on to force)")
  return notes


# -- the peers (torch) -----------------------------------------------------------------------------

def hf_model(cls_name: str, config):
  """The Hugging Face model with the jaxlm config's shape, sdpa attention, random init."""
  import transformers  # noqa: PLC0415
  m = config.model
  if cls_name == "GPT2LMHeadModel":
    assert m.norm == "pre" and m.activation == "gelu_tanh"
    hf_config = transformers.GPT2Config(
      vocab_size=m.vocab_size, n_positions=m.max_seq_len, n_embd=m.embed_dim,
      n_layer=m.num_layers, n_head=m.num_heads, n_inner=m.mlp_dim,
      activation_function="gelu_new", layer_norm_epsilon=m.layer_norm_eps,
      resid_pdrop=m.dropout, embd_pdrop=m.dropout, attn_pdrop=0.0,
      bos_token_id=None, eos_token_id=None)
    return transformers.GPT2LMHeadModel._from_config(hf_config, attn_implementation="sdpa")
  assert m.norm == "post" and m.activation == "gelu_exact"
  hf_config = transformers.BertConfig(
    vocab_size=m.vocab_size, hidden_size=m.embed_dim, num_hidden_layers=m.num_layers,
    num_attention_heads=m.num_heads, intermediate_size=m.mlp_dim, hidden_act="gelu",
    max_position_embeddings=m.max_seq_len, layer_norm_eps=m.layer_norm_eps,
    # jaxlm drops out embeddings and residual branches, not attention probabilities.
    hidden_dropout_prob=m.dropout, attention_probs_dropout_prob=0.0, pad_token_id=0)
  return transformers.BertForMaskedLM._from_config(hf_config, attn_implementation="sdpa")


def torch_batches(cls_name: str, config, device, count: int = 4):
  """Random ordinary tokens on the device; MLM rows get round(rate * T) masked, labelled slots."""
  import torch  # noqa: PLC0415
  B, T, V = config.batch_size, config.seq_len, config.model.vocab_size
  gen = torch.Generator().manual_seed(0)
  batches = []
  for _ in range(count):
    ids = torch.randint(FIRST_ORDINARY_ID, V, (B, T), generator=gen)
    if cls_name == "GPT2LMHeadModel":
      labels = ids  # the model shifts them
    else:
      picked = torch.rand(B, T, generator=gen).argsort(dim=1)[:, :round(config.mlm.mask_rate * T)]
      labels = torch.full_like(ids, -100).scatter(1, picked, ids.gather(1, picked))
      ids = ids.scatter(1, picked, MASK_ID)
    batches.append((ids.to(device), labels.to(device)))
  return batches


def bench_peer(name: str, cls_name: str, config, args: argparse.Namespace,
               notes: list[str]) -> dict:
  import torch  # noqa: PLC0415
  import transformers  # noqa: PLC0415
  device = torch.device(args.device)
  cuda = device.type == "cuda"
  torch.manual_seed(0)
  torch.backends.cuda.matmul.allow_tf32 = True
  torch.backends.cudnn.allow_tf32 = True
  model = hf_model(cls_name, config).to(device).train()
  o = config.optimizer
  params = [p for p in model.parameters() if p.requires_grad]
  groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": o.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
  notes = list(notes)
  try:
    opt = torch.optim.AdamW(groups, lr=o.lr, betas=(o.b1, o.b2), eps=o.eps, fused=True)
    fused = True
  except (RuntimeError, ValueError) as e:  # fused AdamW needs a supported device
    opt = torch.optim.AdamW(groups, lr=o.lr, betas=(o.b1, o.b2), eps=o.eps)
    fused = False
    notes.append(f"fused AdamW unavailable ({e}); foreach AdamW")
  forward = torch.compile(model) if args.use_compile else model
  autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.use_autocast)

  def step(ids, labels):
    with autocast:
      loss = forward(input_ids=ids, labels=labels).loss
    loss.backward()
    if o.grad_clip > 0:
      torch.nn.utils.clip_grad_norm_(params, o.grad_clip)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss

  def sync():
    if cuda:
      torch.cuda.synchronize()

  batches = torch_batches(cls_name, config, device)
  if cuda:
    torch.cuda.reset_peak_memory_stats(device)
  sync()
  start = time.perf_counter()
  step(*batches[0])
  sync()
  first_step_s = time.perf_counter() - start
  for i in range(1, args.warmup):
    step(*batches[i % len(batches)])
  sync()
  start = time.perf_counter()
  for i in range(args.steps):
    loss = step(*batches[(args.warmup + i) % len(batches)])
  sync()  # the only sync in the timed loop
  seconds = time.perf_counter() - start
  tokens_per_s = args.steps * config.batch_size * config.seq_len / seconds
  result = {
    "peer": name, "model": cls_name, "framework": "torch", "torch_version": torch.__version__,
    "transformers_version": transformers.__version__, "device": str(device),
    "device_kind": torch.cuda.get_device_name(device) if cuda else platform.processor()
    or platform.machine(),
    "batch": config.batch_size, "seq": config.seq_len, "layers": config.model.num_layers,
    "width": config.model.embed_dim, "vocab": config.model.vocab_size,
    "params": sum(p.numel() for p in params), "steps": args.steps, "warmup": args.warmup,
    "step_ms": seconds / args.steps * 1e3, "tokens_per_s": tokens_per_s,
    "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 1e9 if cuda else None,
    "first_step_s": first_step_s, "final_loss": float(loss.detach()),
    "attention": model.config._attn_implementation, "compile": args.use_compile,
    "autocast_bf16": args.use_autocast, "fused_adamw": fused, "notes": notes,
  }
  del model, step, batches, groups  # the step's closure holds the model and optimizer
  if cuda:
    torch.cuda.empty_cache()
  return result


# -- jaxlm (run in its own process) ----------------------------------------------------------------

def run_jaxlm(args: argparse.Namespace, notes: list[str]) -> None:
  from jaxlm.train.bench import bench  # noqa: PLC0415
  for name, path, _, batch, seq in PAIRS:
    result = bench(jaxlm_config(path, args, batch, seq), args.steps, args.warmup, name=path)
    print(json.dumps({"jaxlm_for": name, **result, "notes": notes}), flush=True)


def jaxlm_subprocess(args: argparse.Namespace) -> list[dict]:
  env = dict(os.environ)
  # Never compare torch on a GPU with JAX silently falling back to the CPU.
  env["JAX_PLATFORMS"] = "cpu" if args.device == "cpu" else "cuda"
  argv = [sys.executable, __file__, "--only", "jaxlm", "--device", args.device,
          "--steps", str(args.steps), "--warmup", str(args.warmup),
          "--compile", args.compile, "--autocast", args.autocast]
  argv += ["--tiny"] if args.tiny else []
  done = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, cwd=REPO)
  if done.returncode:
    raise SystemExit(f"peers.py: the jaxlm run failed (exit {done.returncode}); see stderr above")
  return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--device", default="cuda", help="cuda or cpu (torch and JAX alike)")
  parser.add_argument("--steps", type=int, default=20, help="timed steps")
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation)")
  parser.add_argument("--tiny", action="store_true",
                      help="2 layers, width 128, vocab 4096, seq 128, batch 4 (a CPU smoke test)")
  parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                      help="torch.compile (auto: on except on cpu)")
  parser.add_argument("--autocast", choices=("auto", "on", "off"), default="auto",
                      help="bf16 autocast, and bf16 compute in jaxlm (auto: on except on cpu)")
  parser.add_argument("--only", choices=("all", "peers", "jaxlm"), default="all")
  args = parser.parse_args(argv)
  if args.steps < 1 or args.warmup < 1:
    parser.error("--steps and --warmup must be >= 1")
  notes = settings(args)

  if args.only == "jaxlm":
    run_jaxlm(args, notes)
    return
  peers = {}
  for name, path, cls_name, batch, seq in PAIRS:
    peers[name] = bench_peer(name, cls_name, jaxlm_config(path, args, batch, seq), args, notes)
    print(json.dumps(peers[name]), flush=True)
  if args.only == "peers":
    return
  for result in jaxlm_subprocess(args):
    print(json.dumps(result), flush=True)
    peer = peers[result["jaxlm_for"]]
    print(json.dumps({
      "ratio": f"jaxlm/{peer['peer']}", "jaxlm_config": result["config"],
      "batch": result["batch"], "seq": result["seq"], "device_kind": result["device_kind"],
      "tokens_per_s_ratio": result["tokens_per_s"] / peer["tokens_per_s"],
      "jaxlm_tokens_per_s": result["tokens_per_s"], "peer_tokens_per_s": peer["tokens_per_s"],
      "jaxlm_mfu": result["mfu"],
      "peak_memory_ratio": (result["peak_memory_gb"] / peer["peak_memory_gb"]
                            if result["peak_memory_gb"] and peer["peak_memory_gb"] else None),
    }), flush=True)


if __name__ == "__main__":
  main()
