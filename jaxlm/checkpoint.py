"""Orbax checkpoints of the train state and the grain iterator, saved asynchronously."""

from __future__ import annotations

from pathlib import Path

import grain
import jax
import orbax.checkpoint as ocp

from jaxlm.train_state import TrainState


def manager(workdir: Path, keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                         enable_async_checkpointing=True)
  return ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", options=options)


def save(mngr: ocp.CheckpointManager, step: int, state: TrainState, data_iter) -> None:
  # Orbax copies device arrays to host before `save` returns, so the next step may donate them.
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          data=grain.checkpoint.CheckpointSave(data_iter)))


def restore_latest(mngr: ocp.CheckpointManager, state: TrainState, shardings: TrainState,
                   data_iter) -> TrainState | None:
  """Restores the newest checkpoint onto `shardings` (and rewinds `data_iter`); None if none."""
  step = mngr.latest_step()
  if step is None:
    return None
  target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        state, shardings)
  restored = mngr.restore(step, args=ocp.args.Composite(
    state=ocp.args.StandardRestore(target), data=grain.checkpoint.CheckpointRestore(data_iter)))
  return restored.state
