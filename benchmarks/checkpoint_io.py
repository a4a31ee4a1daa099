"""Checkpoint save and restore times for a GPT-2-124M-sized train state (params + AdamW moments).

  python benchmarks/checkpoint_io.py [--config configs/gpt2_124m.py] [--dir /tmp/ckpt-bench]

Prints one JSON line: state size, the time `save` blocks the training loop (device-to-host copy),
the time until the checkpoint is committed, and the restore time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import grain
import jax

from jaxlm import sharding
from jaxlm.config import load_config
from jaxlm.train.checkpoint import Checkpointer
from jaxlm.train.optim import make_optimizer
from jaxlm.train.state import create_train_state


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--config", default="configs/gpt2_124m.py")
  parser.add_argument("--dir", default="/tmp/jaxlm-checkpoint-bench")
  args = parser.parse_args()
  config = load_config(args.config, {"model.dtype": "float32"})
  mesh = sharding.make_mesh(config.mesh)
  tx = make_optimizer(config.optimizer, config.steps)
  _, state, shardings = create_train_state(config, mesh, tx)
  jax.block_until_ready(state)
  size_gb = sum(x.nbytes for x in jax.tree.leaves(state)) / 1e9
  shutil.rmtree(args.dir, ignore_errors=True)
  data_iter = iter(grain.MapDataset.range(10).to_iter_dataset())

  ckpt = Checkpointer(Path(args.dir), keep=2)
  start = time.perf_counter()
  ckpt.save(1, state, data_iter, {"bench": True})
  blocking_s = time.perf_counter() - start
  ckpt.manager.wait_until_finished()
  committed_s = time.perf_counter() - start
  ckpt.close()

  start = time.perf_counter()
  restored = Checkpointer(Path(args.dir), keep=2).restore_latest(state, shardings, data_iter)
  jax.block_until_ready(restored)
  restore_s = time.perf_counter() - start
  print(json.dumps({"config": args.config, "device": jax.devices()[0].device_kind,
                    "devices": jax.device_count(), "state_gb": round(size_gb, 3),
                    "save_blocking_s": round(blocking_s, 2), "save_committed_s": round(
                      committed_s, 2), "restore_s": round(restore_s, 2)}))


if __name__ == "__main__":
  main()
