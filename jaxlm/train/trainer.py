"""`build_trainer`: optimizer, sharded state and the jitted steps, built one way for `jaxlm
train`, `jaxlm bench` and benchmarks/memory.py."""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import optax
from flax import nnx
from jax.sharding import NamedSharding

from jaxlm import sharding
from jaxlm.data.special_tokens import SpecialTokens
from jaxlm.train.optim import make_optimizer
from jaxlm.train.state import (
  TrainState,
  abstract_model,
  abstract_train_state,
  create_train_state,
  state_shardings,
)
from jaxlm.train.step import jit_steps


@dataclasses.dataclass
class Trainer:
  graphdef: nnx.GraphDef
  state: TrainState
  state_sh: TrainState  # the NamedSharding of every state leaf
  batch_sh: NamedSharding
  tx: optax.GradientTransformation
  train_step: Callable  # (state, batch) -> (state, metrics), donating state
  eval_step: Callable  # (params, batch, index) -> sums


def build_trainer(config, mesh: jax.sharding.Mesh, special: SpecialTokens, *,
                  abstract: bool = False) -> Trainer:
  """The state initialised in place, sharded over `mesh`, and its jitted train / eval steps.
  abstract: the state's shapes and dtypes only (nothing allocated), for lowering and
  compiling the steps without running them (the memory benchmark)."""
  tx = make_optimizer(config.optimizer, config.steps)
  if abstract:
    graphdef, _ = abstract_model(config)
    state, state_sh = abstract_train_state(config, tx), state_shardings(config, mesh, tx)
  else:
    graphdef, state, state_sh = create_train_state(config, mesh, tx)
  batch_sh = sharding.batch_sharding(mesh)
  train_step, eval_step = jit_steps(graphdef, config, special, tx, state_sh, batch_sh)
  return Trainer(graphdef, state, state_sh, batch_sh, tx, train_step, eval_step)
