"""`jaxlm train`: data, sharded state, the jitted step in a loop, logging, eval, checkpoints.

Read top to bottom: setup (mesh, data, tokenizer, compatibility with what the workdir holds,
state), then the loop. Everything that can refuse a run does so before anything is written or
compiled. The host reads each step's metrics one step late, so it never waits on the device.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import jax
from etils import epath

from jaxlm import objectives, preflight, sharding, storage
from jaxlm.config import Config, DataError, replace_at
from jaxlm.data import pipeline, tokenizer
from jaxlm.objectives.build import count_params, merge_params
from jaxlm.train import trackers
from jaxlm.train.checkpoint import (
  Checkpointer,
  WallClockCadence,
  check_compatible,
  restore_params,
  run_metadata,
)
from jaxlm.train.evaluate import bytes_per_token, evaluate, with_bits_per_byte
from jaxlm.train.flops import peak_tflops_per_device, training_flops_per_token
from jaxlm.train.logger import MetricsLogger
from jaxlm.train.trainer import build_trainer


class Preempted(Exception):
  """SIGTERM or Ctrl-C (or a multi-host preemption notice) arrived; a checkpoint was
  committed. `signum` is the signal (None for a preemption notice)."""

  def __init__(self, message: str, signum: int | None = None):
    super().__init__(message)
    self.signum = signum


class NonFiniteLoss(Exception):
  """Too many consecutive steps had a NaN or Inf loss or gradient."""


def _init_from_metadata(config: Config, meta: dict) -> None:
  """Refuses an --init_from run whose tokenizer or shape differs (objective only if allowed)."""
  where = f"--init_from {config.init_from}"
  saved = Checkpointer(config.init_from, keep=1).latest_metadata()
  if saved is None:
    raise DataError(f"{where}: holds no readable checkpoint")
  saved = {k: v for k, v in saved.items() if k != "requested"}  # the new run asks afresh
  if config.allow_objective_change:
    saved = {**saved, "objective": meta["objective"]}
  check_compatible(saved, meta, where)


def _load_data(config: Config, workdir: epath.Path):
  """Data and tokenizer. Returns (the config resolved against them: the embedding table fitted
  to the tokenizer, an --init_from run's tokenizer shared; data; special tokens; run metadata
  for checkpoints)."""
  requested = {"tokenizer": config.data.tokenizer, "vocab_size": config.data.vocab_size}
  if config.init_from and not (workdir / "tokenizer.json").exists():
    config = replace_at(config, "data.tokenizer",  # share the run's tokenizer
                        str(storage.path(config.init_from) / "tokenizer.json"))
  data = pipeline.load(config, lambda texts: tokenizer.from_process_zero(
    lambda: tokenizer.load_or_train(workdir, config.data.tokenizer, texts,
                                    config.data.vocab_size,
                                    pipeline.cache_dir(config) / "tokenizers")),
    objectives.get(config.objective).rows)
  special = tokenizer.special_tokens(data.tokenizer)
  config = replace_at(config, "model.vocab_size",
                      config.embedding_rows(special.vocab_in_use)).validate()
  meta = {**run_metadata(config, tokenizer.tokenizer_hash(data.tokenizer)), "requested": requested}
  return config, data, special, meta


class _StopFlag:
  """Turns SIGTERM and a first Ctrl-C (SIGINT) into a flag the loop checks after each step, so
  the run saves and stops as on preemption; a second Ctrl-C interrupts at once (main thread
  only)."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.raised = False
    self.signum = None
    self.previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    return self

  def _handle(self, signum, frame):
    if self.raised and signum == signal.SIGINT:
      raise KeyboardInterrupt
    if signum == signal.SIGINT:
      print("\njaxlm: Ctrl-C: saving a checkpoint after this step (Ctrl-C again to stop now)",
            file=sys.stderr)
    self.raised, self.signum = True, signum

  def __exit__(self, *exc):
    for s, previous in self.previous.items():
      signal.signal(s, previous)


def train(config: Config, workdir: str | os.PathLike, *, quiet: bool = False) -> dict:
  """Trains `config` in `workdir` (local or gs://; resuming from its newest checkpoint).

  Returns {"train": last logged metrics, "eval": final held-out metrics, "config": the resolved
  config (embedding table fitted to the tokenizer, the shared tokenizer file of an --init_from
  run; the config a saved run is loaded with), "step": the step of the newest checkpoint}."""
  config = preflight.pretrain_config(config)
  trackers.check(config.trackers)
  workdir = storage.path(workdir)
  mesh = sharding.make_mesh(config.mesh)
  preflight.mesh_fit(config, mesh)
  config, data, special, meta = _load_data(config, workdir)
  milestones = set(config.milestone_steps())
  ckpt = Checkpointer(workdir, config.keep_checkpoints, config.keep_period, sorted(milestones))
  saved = ckpt.latest_metadata()
  if saved is not None:
    check_compatible(saved, meta, f"{workdir}/checkpoints")
  elif config.init_from:
    _init_from_metadata(config, meta)

  trainer = build_trainer(config, mesh, special)
  state, state_sh, batch_sh = trainer.state, trainer.state_sh, trainer.batch_sh
  train_step, eval_step = trainer.train_step, trainer.eval_step
  train_iter = iter(pipeline.batches(data.train, config.batch_size, config.seed))
  restored = ckpt.restore_latest(state, state_sh, train_iter) if saved is not None else None
  if restored is not None:
    state = restored
  elif config.init_from:
    _, loaded = restore_params(config.init_from, mesh)
    state = state.replace(params=merge_params(state.params, loaded))
  start = int(state.step)
  if restored is not None and start >= config.steps:
    # Already complete: nothing is trained, saved or logged again (no duplicate rows).
    print(f"jaxlm train: {workdir} is already complete at step {start}", file=sys.stderr)
    try:
      with jax.set_mesh(mesh):
        final_eval = with_bits_per_byte(
          evaluate(eval_step, state.params, data.heldout, config, batch_sh), config.objective,
          bytes_per_token(data))
    finally:
      ckpt.close()
    return {"train": {}, "eval": final_eval, "config": config, "step": start}
  if restored is not None:
    print(f"jaxlm train: resumed from step {start} of {config.steps} in {workdir}",
          file=sys.stderr)
  if jax.process_index() == 0:  # after the checks: it always describes the checkpoints
    (workdir / "config.json").write_text(config.to_json())

  per_token = bytes_per_token(data)

  def heldout() -> dict[str, float]:
    return with_bits_per_byte(evaluate(eval_step, state.params, data.heldout, config, batch_sh),
                              config.objective, per_token)

  tokens_per_step = config.batch_size * config.seq_len
  flops_per_token = training_flops_per_token(config)
  peak = peak_tflops_per_device(config)
  log = MetricsLogger(workdir, config.steps, start, quiet, config.trackers, config.to_dict())
  try:
    log.write({"step": start, "split": "setup", "params": count_params(state.params),
               "train": pipeline.describe(data.train), "heldout": pipeline.describe(data.heldout),
               "devices": jax.device_count(), "mesh": dict(mesh.shape),
               "flops_per_token": flops_per_token, "vocab_in_use": special.vocab_in_use,
               "tokenizer_hash": meta["tokenizer_hash"], "resumed": restored is not None})

    def report(step: int, metrics, steps_done: int, seconds: float) -> dict:
      tokens_per_s = steps_done * tokens_per_step / max(seconds, 1e-9)
      tflops = tokens_per_s * flops_per_token / 1e12 / jax.device_count()
      event = {"step": step, "split": "train", **{k: float(v) for k, v in metrics.items()},
               "tokens_seen": step * tokens_per_step, "tokens_per_s": tokens_per_s,
               "tflops_per_s_per_device": tflops, "mfu": tflops / peak if peak else None,
               "step_time": seconds / max(steps_done, 1)}
      log.write(event)
      return event

    last, pending, previous_streak = {}, None, None
    clock = WallClockCadence(config.checkpoint_minutes, config.log_every)
    timer, timed_from = time.perf_counter(), start  # the first window includes compilation

    def flush() -> None:
      """Logs the pending step's metrics (it has finished, or this waits for it)."""
      nonlocal last, pending, timer, timed_from
      if pending is not None:
        logged_step, logged = pending[0], jax.device_get(pending[1])
        now = time.perf_counter()
        last = report(logged_step, logged, logged_step - timed_from, now - timer)
        timer, timed_from, pending = now, logged_step, None

    with jax.set_mesh(mesh), _StopFlag() as stop:
      for step in range(start, config.steps):
        batch = pipeline.to_global(next(train_iter), batch_sh)
        state, metrics = train_step(state, batch)
        done = step + 1
        # One step late: the previous step has finished by the time this one is queued.
        if previous_streak is not None and int(previous_streak) >= config.max_nonfinite_steps:
          raise NonFiniteLoss(f"{config.max_nonfinite_steps} consecutive steps had a non-finite "
                              f"loss or gradient (up to step {done - 1}); none was applied. Lower "
                              "optimizer.lr, or check the data")
        previous_streak = metrics["nonfinite_streak"]
        flush()
        if done % config.log_every == 0 or done == config.steps:
          pending = (done, metrics)
        log.advance(1)
        if config.eval_every and done % config.eval_every == 0 and done != config.steps:
          log.write({"step": done, "split": "eval", **heldout()})
        if stop.raised or ckpt.reached_preemption(done):
          flush()
          ckpt.save(done, state, train_iter, meta)
          why = "stopped (Ctrl-C)" if stop.signum == signal.SIGINT else "preempted"
          raise Preempted(f"{why} at step {done}; checkpoint committed in {workdir}, rerun to "
                          "resume", stop.signum)
        if ((config.checkpoint_every and done % config.checkpoint_every == 0)
            or done in milestones or clock.due(done)):
          ckpt.save(done, state, train_iter, meta)
          clock.saved()
          log.flush()  # what a resumed run will not log again is stored with its checkpoint
      flush()
      final_eval = heldout()
    log.write({"step": int(state.step), "split": "eval", **final_eval})
    if ckpt.latest_step() != int(state.step):
      ckpt.save(int(state.step), state, train_iter, meta)
  finally:
    ckpt.close()  # waits for any save in flight to commit
    log.close()
  return {"train": last, "eval": final_eval, "config": config, "step": int(state.step)}
