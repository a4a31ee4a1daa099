"""The one pure train step and the eval step, jitted with explicit shardings.

Randomness (MLM masks, prefix splits, dropout) is folded from (seed, step), never carried as
state, so a step is a pure function of (state, batch) and resuming replays it exactly.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import NamedSharding

from jaxlm import objectives
from jaxlm.config import Config
from jaxlm.data.special_tokens import SpecialTokens
from jaxlm.objectives import objective_sums, summarize
from jaxlm.objectives.build import abstract_model
from jaxlm.train.optim import schedule
from jaxlm.train.state import TrainState

TRAIN_STREAM, EVAL_STREAM = 0, 1


def _add(a, b):
  return jax.tree.map(jnp.add, a, b)


def make_train_step(graphdef: nnx.GraphDef, config: Config, special: SpecialTokens,
                    tx: optax.GradientTransformation) -> Callable:
  lr_at = schedule(config.optimizer, config.steps)
  micro = config.grad_accum

  record = objectives.get(config.objective)

  def sums_fn(params, batch, key, step):
    sums = objective_sums(nnx.merge(graphdef, params), batch, key, config, special, dropout=True,
                          step=step)
    return sums["loss_sum"], sums

  grad_fn = jax.grad(sums_fn, has_aux=True)

  def train_step(state: TrainState, batch: dict[str, jax.Array]):
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), TRAIN_STREAM),
                             state.step)
    if micro == 1:
      grads, sums = grad_fn(state.params, batch, key, state.step)
    else:
      # Microbatch i takes rows i, i+micro, ...: each device keeps working on its own shard.
      def split(x):
        return x.reshape(x.shape[0] // micro, micro, *x.shape[1:]).swapaxes(0, 1)

      def body(carry, xs):
        microbatch, i = xs
        grads, sums = grad_fn(state.params, microbatch, jax.random.fold_in(key, i), state.step)
        return _add(carry, (grads, sums)), None

      first = jax.tree.map(lambda x: split(x)[0], batch)
      zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                           jax.eval_shape(grad_fn, state.params, first, key, state.step))
      (grads, sums), _ = jax.lax.scan(body, zeros, (jax.tree.map(split, batch), jnp.arange(micro)))
    # Gradient of the mean loss over every predicted token of the global batch.
    grads = jax.tree.map(lambda g: g / jnp.maximum(sums["count"], 1.0), grads)
    grad_norm = optax.tree_utils.tree_norm(grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # A non-finite loss or gradient is never applied: parameters and moments stay as they were
    # (the step and the data still advance, so a bad batch is skipped, not retried forever).
    finite = jnp.isfinite(sums["loss_sum"]) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    streak = jnp.where(finite, 0, state.nonfinite_streak + 1)
    metrics = summarize(sums, config.objective)
    metrics.update(grad_norm=grad_norm, lr=lr_at(state.step), nonfinite_streak=streak)
    if record.phases:  # an objective schedule: which phase this step trained
      metrics["phase"] = record.phase_of(state.step, config)
    return TrainState(step=state.step + 1, params=keep(params, state.params),
                      opt_state=keep(opt_state, state.opt_state), nonfinite_streak=streak), metrics

  return train_step


def make_eval_step(graphdef: nnx.GraphDef, config: Config, special: SpecialTokens) -> Callable:
  """Summed loss / correct / count on one held-out batch; the same masks at every evaluation."""

  def eval_step(params: nnx.State, batch: dict[str, jax.Array], index: jax.Array):
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), EVAL_STREAM), index)
    return objective_sums(nnx.merge(graphdef, params), batch, key, config, special, dropout=False)

  return eval_step


def jit_steps(graphdef, config, special, tx, state_sh: TrainState, batch_sh: NamedSharding):
  """The train step (donating its state), jitted with explicit shardings, and the eval step
  (`eval_step_for`)."""
  # `batch_sh` is a prefix for the whole batch: every field, whatever its keys (sentence-pair rows
  # add token types and labels), is split on its batch axis.
  train = jax.jit(make_train_step(graphdef, config, special, tx),
                  in_shardings=(state_sh, batch_sh), out_shardings=(state_sh, None),
                  donate_argnums=0)
  return train, eval_step_for(config, special)


_EVAL_STEPS: dict[tuple, Callable] = {}


def eval_step_for(config: Config, special: SpecialTokens) -> Callable:
  """The jitted eval step of `config`'s model, one per (config, special tokens) in a process: a
  run's periodic evaluations and a study's held-out measurements of the same run (at every
  learning-curve milestone too) share one compilation. It takes its arguments' shardings (the
  state's parameters, batches placed by `pipeline.to_global`)."""
  key = (config, special)
  if key not in _EVAL_STEPS:
    _EVAL_STEPS[key] = jax.jit(make_eval_step(abstract_model(config)[0], config, special))
  return _EVAL_STEPS[key]
