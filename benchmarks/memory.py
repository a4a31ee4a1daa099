"""Memory of one training step, as XLA plans it: `python benchmarks/memory.py [--config ...]`.

Compiles (never runs) the train step that `jaxlm train` would run, from the abstract state, and
prints one JSON line per variant with the compiled executable's buffer sizes: arguments (state
and batch), temporaries (activations, logits, gradients in flight) and their sum. It needs no
accelerator: on CPU it gives XLA's CPU buffer assignment, a prediction for a GPU, whose fusions
differ; on a GPU it gives that GPU's plan. Variants are config overrides, so each line says
exactly what changed.
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp

from jaxlm import sharding
from jaxlm.config import load_config
from jaxlm.data.packing import BATCH_KEYS
from jaxlm.train.bench import with_synthetic_tokenizer
from jaxlm.train.trainer import build_trainer

VARIANTS = {
  "baseline": {},
  "loss_chunk=128": {"model.loss_chunk": "128"},
  "mu_dtype=bfloat16": {"optimizer.mu_dtype": "bfloat16"},
  "remat=full": {"model.remat": "full"},
  "loss_chunk=128,remat=full,mu_dtype=bfloat16": {
    "model.loss_chunk": "128", "model.remat": "full", "optimizer.mu_dtype": "bfloat16"},
}


def step_memory(config_path: str, overrides: dict[str, str]) -> dict:
  config, special = with_synthetic_tokenizer(
    load_config(config_path, {"mesh.data": "1", **overrides}))
  mesh = sharding.make_mesh(config.mesh, jax.devices()[:1])
  trainer = build_trainer(config, mesh, special, abstract=True)
  rows = jax.ShapeDtypeStruct((config.batch_size, config.seq_len), jnp.int32)
  with jax.set_mesh(mesh):
    compiled = trainer.train_step.lower(trainer.state, {k: rows for k in BATCH_KEYS}).compile()
  m = compiled.memory_analysis()
  gb = 1e9
  return {"config": config_path, "overrides": overrides, "device": jax.devices()[0].device_kind,
          "batch": config.batch_size, "seq": config.seq_len,
          "arguments_gb": round(m.argument_size_in_bytes / gb, 3),
          "temporaries_gb": round(m.temp_size_in_bytes / gb, 3),
          "total_gb": round((m.argument_size_in_bytes + m.temp_size_in_bytes) / gb, 3)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", action="append",
                      help="repeatable; default: configs/gpt2_124m.py and configs/bert_base.py")
  parser.add_argument("--variant", action="append", choices=sorted(VARIANTS),
                      help="repeatable; default: all")
  args = parser.parse_args()
  for config_path in args.config or ["configs/gpt2_124m.py", "configs/bert_base.py"]:
    for name in args.variant or VARIANTS:
      print(json.dumps({"variant": name, **step_memory(config_path, VARIANTS[name])}), flush=True)


if __name__ == "__main__":
  main()
