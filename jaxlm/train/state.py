"""The train state and its sharded creation: nothing is ever materialised unsharded.

The model is traced abstractly (`nnx.eval_shape`) to read each parameter's logical axes; the
real initialisation then runs inside `jax.jit` with those shardings as outputs, so every device
only ever allocates its own shard of parameters and optimizer moments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxlm import sharding
from jaxlm.config import Config
from jaxlm.objectives.build import abstract_model, build_model


@struct.dataclass
class TrainState:
  step: jax.Array
  params: nnx.State
  opt_state: optax.OptState
  nonfinite_streak: jax.Array  # consecutive skipped (non-finite) steps


def state_shardings(config: Config, mesh: Mesh, tx: optax.GradientTransformation) -> TrainState:
  """NamedShardings for every leaf of the TrainState: params by their logical axes, optimizer
  moments like the params they track, scalars replicated."""
  _, abstract_params = abstract_model(config)
  param_sh, opt_sh = param_and_optimizer_shardings(abstract_params, mesh, tx)
  replicated = NamedSharding(mesh, P())
  return TrainState(step=replicated, params=param_sh, opt_state=opt_sh,
                    nonfinite_streak=replicated)


def param_and_optimizer_shardings(abstract_params: nnx.State, mesh: Mesh,
                                  tx: optax.GradientTransformation):
  """(params, optimizer state) NamedShardings: params by their logical axes, the moments like
  the params they track, the optimizer's scalars (step counts) replicated."""
  param_sh = sharding.named(mesh, sharding.param_specs(abstract_params))
  replicated = NamedSharding(mesh, P())
  abstract_opt = jax.eval_shape(tx.init, abstract_params)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, abstract_opt, param_sh,
                                 transform_non_params=lambda _: replicated,
                                 is_leaf=lambda x: isinstance(x, NamedSharding))
  return param_sh, opt_sh


def _init_fn(config: Config, tx: optax.GradientTransformation):
  def init() -> TrainState:
    params = nnx.state(build_model(config, config.seed))
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      nonfinite_streak=jnp.zeros((), jnp.int32))

  return init


def abstract_train_state(config: Config, tx: optax.GradientTransformation) -> TrainState:
  """Shapes and dtypes of the train state, computed without allocating it."""
  return jax.eval_shape(_init_fn(config, tx))


def create_train_state(config: Config, mesh: Mesh, tx: optax.GradientTransformation):
  """Returns (graphdef, state, shardings) with the state initialised in place, sharded."""
  graphdef, _ = abstract_model(config)
  shardings = state_shardings(config, mesh, tx)
  with jax.set_mesh(mesh):
    state = jax.jit(_init_fn(config, tx), out_shardings=shardings)()
  return graphdef, state, shardings
