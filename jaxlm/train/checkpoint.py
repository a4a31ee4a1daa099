"""Orbax checkpoints: train state, each host's grain iterator, and run metadata, in
WORKDIR/checkpoints/<step>/. Saves are asynchronous and atomic (orbax writes to a temporary
directory and renames it on commit), so a run killed mid-save leaves the previous checkpoint as
the newest complete one. A checkpoint that fails to restore is moved aside, never deleted, and
the one before it is used.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Sequence

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint.checkpoint_managers import preservation_policy

from jaxlm import objectives, storage
from jaxlm.config import Config, DataError, OptimizerConfig, from_dict
from jaxlm.train.optim import make_optimizer, schedule
from jaxlm.train.state import TrainState, abstract_train_state, state_shardings

# What plans the learning rate: a resumed run keeps them unless allow_schedule_change is set.
SCHEDULE_KEYS = ("steps", "optimizer.lr", "optimizer.schedule", "optimizer.warmup_steps",
                 "optimizer.decay_frac", "optimizer.end_lr_frac", "schedule.first_frac")
# What must match between a checkpoint and the run that restores it.
SHAPE_KEYS = ("embed_dim", "num_heads", "num_layers", "mlp_dim", "max_seq_len", "position",
              "norm", "scan_layers", "vocab_size")


def run_metadata(config: Config, tokenizer_hash: str) -> dict:
  return {"objective": config.objective, "tokenizer_hash": tokenizer_hash,
          "model": {k: getattr(config.model, k) for k in SHAPE_KEYS},
          "config": config.to_dict()}


def check_compatible(saved: dict, current: dict, where: str) -> None:
  """Raises DataError (one line) when a checkpoint cannot continue as this run."""
  if saved["tokenizer_hash"] != current["tokenizer_hash"]:
    raise DataError(f"{where}: its tokenizer ({saved['tokenizer_hash']}) differs from this "
                    f"run's ({current['tokenizer_hash']}); use the run's tokenizer.json or a "
                    "new workdir")
  for key in SHAPE_KEYS:
    if saved["model"][key] != current["model"][key]:
      raise DataError(f"{where}: model.{key}={saved['model'][key]} there but "
                      f"{current['model'][key]} here; the model shape must match")
  asked, now = saved.get("requested"), current.get("requested")
  if asked is not None and now is not None and asked != now:
    raise DataError(f"{where}: made with data.tokenizer={asked['tokenizer']!r}, "
                    f"data.vocab_size={asked['vocab_size']}; this run asks for "
                    f"{now['tokenizer']!r}, {now['vocab_size']}")
  opened = {k: (m.get("config") or {}).get("data", {}).get("doc_start", "none")
            for k, m in (("saved", saved), ("current", current))}
  if opened["saved"] != opened["current"] and not where.startswith("--init_from"):
    raise DataError(f"{where}: its documents open with data.doc_start={opened['saved']}, this "
                    f"run's with {opened['current']}; resume with "
                    f"--config.data.doc_start={opened['saved']} or use a new workdir")
  if saved["objective"] != current["objective"]:
    hint = ("add --config.allow_objective_change=true" if where.startswith("--init_from") else
            "to continue with another objective, start a new workdir with --init_from this one "
            "and --config.allow_objective_change=true")
    raise DataError(f"{where}: trained with objective={saved['objective']}, this run is "
                    f"{current['objective']}; {hint}")
  if not where.startswith("--init_from"):
    _check_schedule(saved.get("config") or {}, current["config"], where)


def _check_schedule(saved: dict, current: dict, where: str) -> None:
  """Refuses a resume whose learning rates would differ from the ones the checkpoint's run
  planned (one line): raising `steps` re-plans a cosine schedule, not a constant one. An
  objective schedule (CLM then MLM) switches at a share of `steps`, so any change there counts."""
  if current.get("allow_schedule_change") or not saved:
    return
  plans = [(c["steps"], c.get("optimizer") or {}, (c.get("schedule") or {}).get("first_frac"))
           for c in (saved, current)]
  span = np.arange(max(plans[0][0], plans[1][0]))
  rates = [np.asarray(schedule(_optimizer(opt), steps)(span)) for steps, opt, _ in plans]
  phased = bool(objectives.get(current["objective"]).phases)
  if np.array_equal(*rates) and not (phased and plans[0][::2] != plans[1][::2]):
    return
  for key in SCHEDULE_KEYS:
    group, _, name = key.rpartition(".")
    there = (saved.get(group) or {}).get(name) if group else saved.get(name)
    here = (current.get(group) or {}).get(name) if group else current.get(name)
    if there is not None and there != here:
      raise DataError(f"{where}: planned with {key}={there}, this run asks for {here}; the "
                      "learning-rate schedule would change mid-run: add "
                      "--config.allow_schedule_change=true to extend or re-plan it, or use a "
                      "new workdir")


def _optimizer(saved: dict) -> OptimizerConfig:
  names = {f.name for f in dataclasses.fields(OptimizerConfig)}
  return OptimizerConfig(**{k: v for k, v in saved.items() if k in names})


class WallClockCadence:
  """Says when `minutes` of wall time have passed since the last save (levanter saves every 15
  minutes by default). Asked only at logging steps; process 0's clock decides for every process,
  so all hosts save the same steps."""

  def __init__(self, minutes: float, every: int):
    self.seconds, self.every = minutes * 60, every
    self.last = time.monotonic()

  def due(self, step: int) -> bool:
    if not self.seconds or step % self.every:
      return False
    due = time.monotonic() - self.last >= self.seconds
    if jax.process_count() > 1:
      due = bool(multihost_utils.broadcast_one_to_all(np.int32(due)))
    return due

  def saved(self) -> None:
    self.last = time.monotonic()


class Checkpointer:

  def __init__(self, workdir: str | os.PathLike, keep: int, keep_period: int = 0,
               keep_steps: Sequence[int] = ()):
    """Keeps the newest `keep` checkpoints, every multiple of `keep_period`, and `keep_steps`
    (the token milestones of a learning curve) whatever else is saved after them."""
    if keep_steps:
      policies = [preservation_policy.LatestN(keep), preservation_policy.CustomSteps(keep_steps)]
      if keep_period:
        policies.append(preservation_policy.EveryNSteps(keep_period))
      options = ocp.CheckpointManagerOptions(
        preservation_policy=preservation_policy.AnyPreservationPolicy(policies), create=True,
        enable_async_checkpointing=True)
    else:
      options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, keep_period=keep_period or None, create=True,
        enable_async_checkpointing=True)
    self.directory = storage.path(workdir) / "checkpoints"
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_metadata(self) -> dict | None:
    """The newest checkpoint's run metadata, read without touching any array."""
    return self._newest_readable(
      lambda step: self.manager.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore()))["meta"])

  def save(self, step: int, state: TrainState, data_iter, meta: dict) -> None:
    # Orbax copies device arrays to host before `save` returns: the next step may donate them.
    self.manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(data_iter),
      meta=ocp.args.JsonSave(meta)))

  def restore_latest(self, state: TrainState, shardings: TrainState,
                     data_iter) -> TrainState | None:
    """The newest restorable checkpoint, placed on `shardings` (any mesh); rewinds `data_iter`."""
    target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          state, shardings)
    return self._newest_readable(
      lambda step: self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target),
        data=grain.checkpoint.CheckpointRestore(data_iter)))["state"])

  def _newest_readable(self, read):
    """`read(step)` for the newest step that reads. Newer ones that fail are moved aside (never
    deleted) once an older one has read, so a truncated save costs one checkpoint interval. If
    none reads, nothing is moved: the fault is more likely ours than every checkpoint's."""
    failed: list[tuple[int, Exception]] = []
    for step in sorted(self.manager.all_steps(), reverse=True):
      try:
        value = read(step)
      except Exception as e:  # noqa: BLE001 - judged below, against the older checkpoints
        failed.append((step, e))
        continue
      for bad_step, error in failed:
        self._set_aside(bad_step, error)
      return value
    if failed:
      step, error = failed[0]
      raise DataError(f"{self.directory}: no checkpoint could be restored (newest, {step}: "
                      f"{_first_line(error)})")
    return None

  def _set_aside(self, step: int, error: Exception) -> None:
    aside = self.directory.parent / f"checkpoints-unreadable/{step}-{int(time.time())}"
    print(f"jaxlm: warning: checkpoint {step} is unreadable ({_first_line(error)}); moved to "
          f"{aside}, resuming from an older one", file=sys.stderr)
    if jax.process_index() == 0:
      aside.parent.mkdir(parents=True, exist_ok=True)
      (self.directory / str(step)).rename(aside)
    self.manager.reload()

  def reached_preemption(self, step: int) -> bool:
    """Multi-host: whether JAX's preemption sync point says every host should save now."""
    return jax.process_count() > 1 and self.manager.reached_preemption(step)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def _first_line(error: Exception) -> str:
  text = str(error).strip()
  return text.splitlines()[0][:200] if text else type(error).__name__


def portable_config(saved: dict) -> Config:
  """A saved run config, minus what only mattered where it trained: a tokenizer path or an
  --init_from directory that need not exist on this machine (the run's own tokenizer.json is
  what counts), and its device mesh."""
  return from_dict({**saved, "data": {**saved["data"], "tokenizer": "bpe"}, "init_from": "",
                    "mesh": {"data": -1, "fsdp": 1, "tensor": 1}})


def restore_params(run_dir: str | os.PathLike, mesh: jax.sharding.Mesh, step: int | None = None):
  """(config, parameters) of a run's newest checkpoint (or the one at `step`), the parameters
  placed on `mesh`."""
  source = Checkpointer(run_dir, keep=1)
  try:
    meta = source.latest_metadata()
    if meta is None:
      raise DataError(f"{run_dir}: holds no readable checkpoint")
    if step is not None and step not in source.manager.all_steps():
      raise DataError(f"{run_dir}: holds no checkpoint at step {step}")
    config = portable_config(meta["config"])
    # Checkpoints hold the whole train state; restore it as saved and keep the parameters.
    tx = make_optimizer(config.optimizer, config.steps)
    target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          abstract_train_state(config, tx), state_shardings(config, mesh, tx))
    restored = source.manager.restore(step or source.latest_step(), args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target)))
  finally:
    source.close()
  return config, restored["state"].params
