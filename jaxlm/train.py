"""`jaxlm train`: data, sharded state, the jitted step in a loop, logging, eval, checkpoints.

Read top to bottom: setup (mesh, data, tokenizer, state), then the loop. The host reads each
step's metrics one step late, so it never waits on the device inside the loop.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from jaxlm import checkpoint, pipeline, sharding, tokenizer
from jaxlm.config import Config, ConfigError
from jaxlm.flops import peak_tflops_per_device, training_flops_per_token
from jaxlm.metrics_log import MetricsLogger
from jaxlm.objectives import summarize
from jaxlm.optim import make_optimizer
from jaxlm.step import jit_steps
from jaxlm.train_state import count_params, create_train_state


def check_fits(config: Config, mesh: jax.sharding.Mesh) -> None:
  """Shape checks that need the mesh; all before anything compiles."""
  shards = mesh.shape["data"] * mesh.shape["fsdp"]
  micro_batch = config.batch_size // config.grad_accum
  if micro_batch % shards:
    raise ConfigError(
      f"config.batch_size={config.batch_size}: each of the {config.grad_accum} microbatches "
      f"({micro_batch} sequences) must split evenly over data*fsdp={shards} devices")


def evaluate(eval_step, params, rows: pipeline.PackedRows, config: Config, batch_sh) -> dict:
  """Held-out metrics over the first `eval_batches` batches (same rows, same masks each time)."""
  it = iter(pipeline.batches(rows, config.batch_size, config.seed, shuffle=False))
  total = None
  for i in range(config.eval_batches):
    sums = eval_step(params, pipeline.to_global(next(it), batch_sh), np.int32(i))
    total = sums if total is None else jax.tree.map(lambda a, b: a + b, total, sums)
  return {k: float(v) for k, v in summarize(total, config.objective).items()}


def train(config: Config, workdir: str | Path, *, quiet: bool = False) -> dict:
  """Trains `config` in `workdir` (resuming from its newest checkpoint); returns final metrics."""
  workdir = Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  mesh = sharding.make_mesh(config.mesh)
  check_fits(config, mesh)
  data = pipeline.load(config, lambda texts: tokenizer.load_or_train(
    workdir, config.data.tokenizer, texts, config.model.vocab_size,
    pipeline.cache_dir(config) / "tokenizers"))
  special = tokenizer.special_tokens(data.tokenizer)
  # The embedding table fits the tokenizer, rounded up to a multiple of 128 for the matmul units.
  config.model.vocab_size = -(-special.vocab_in_use // 128) * 128
  config.validate()
  if jax.process_index() == 0:
    (workdir / "config.json").write_text(config.to_json())

  tx = make_optimizer(config.optimizer, config.steps)
  graphdef, state, state_sh = create_train_state(config, mesh, tx)
  batch_sh = sharding.batch_sharding(mesh)
  train_step, eval_step = jit_steps(graphdef, config, special, tx, state_sh, batch_sh)
  train_iter = iter(pipeline.batches(data.train, config.batch_size, config.seed))
  ckpt = checkpoint.manager(workdir, config.keep_checkpoints)
  restored = checkpoint.restore_latest(ckpt, state, state_sh, train_iter)
  state = restored if restored is not None else state
  start = int(state.step)

  tokens_per_step = config.batch_size * config.seq_len
  flops_per_token = training_flops_per_token(config)
  peak = peak_tflops_per_device(config)
  log = MetricsLogger(workdir, config.steps, start, quiet)
  log.write({"step": start, "split": "setup", "params": count_params(state.params),
             "train": pipeline.describe(data.train), "heldout": pipeline.describe(data.heldout),
             "devices": jax.device_count(), "mesh": dict(mesh.shape),
             "flops_per_token": flops_per_token, "vocab_in_use": special.vocab_in_use,
             "tokenizer_hash": tokenizer.tokenizer_hash(data.tokenizer)})

  def report(step: int, metrics, steps_done: int, seconds: float) -> dict:
    tokens_per_s = steps_done * tokens_per_step / max(seconds, 1e-9)
    tflops = tokens_per_s * flops_per_token / 1e12 / jax.device_count()
    event = {"step": step, "split": "train", **{k: float(v) for k, v in metrics.items()},
             "tokens_seen": step * tokens_per_step, "tokens_per_s": tokens_per_s,
             "tflops_per_s_per_device": tflops, "mfu": tflops / peak if peak else None,
             "step_time": seconds / max(steps_done, 1)}
    log.write(event)
    return event

  last, pending = {}, None
  timer, timed_from = time.perf_counter(), start  # the first window includes compilation
  with jax.set_mesh(mesh):
    for step in range(start, config.steps):
      batch = pipeline.to_global(next(train_iter), batch_sh)
      state, metrics = train_step(state, batch)
      if pending is not None:  # read the previous logged step now that the next is queued
        logged_step, logged = pending[0], jax.device_get(pending[1])
        now = time.perf_counter()
        last = report(logged_step, logged, logged_step - timed_from, now - timer)
        timer, timed_from, pending = now, logged_step, None
      done = step + 1
      if done % config.log_every == 0 or done == config.steps:
        pending = (done, metrics)
      log.advance(1)
      if config.eval_every and done % config.eval_every == 0 and done != config.steps:
        log.write({"step": done, "split": "eval",
                   **evaluate(eval_step, state.params, data.heldout, config, batch_sh)})
      if config.checkpoint_every and done % config.checkpoint_every == 0:
        checkpoint.save(ckpt, done, state, train_iter)
    if pending is not None:
      logged = jax.device_get(pending[1])
      last = report(pending[0], logged, pending[0] - timed_from, time.perf_counter() - timer)
    final_eval = evaluate(eval_step, state.params, data.heldout, config, batch_sh)
  log.write({"step": int(state.step), "split": "eval", **final_eval})
  if ckpt.latest_step() != int(state.step):
    checkpoint.save(ckpt, int(state.step), state, train_iter)
  ckpt.wait_until_finished()
  ckpt.close()
  log.close()
  return {"train": last, "eval": final_eval}
