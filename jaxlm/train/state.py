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
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxlm import sharding
from jaxlm.config import Config, ConfigError
from jaxlm import objectives
from jaxlm.model import LanguageModel


@struct.dataclass
class TrainState:
  step: jax.Array
  params: nnx.State
  opt_state: optax.OptState
  nonfinite_streak: jax.Array  # consecutive skipped (non-finite) steps


def build_model(config: Config, seed: int) -> LanguageModel:
  if not config.model.vocab_size:
    raise ConfigError("config.model.vocab_size=0: the embedding table is fitted to the tokenizer "
                      "when training starts; building a model outside training needs it set")
  objective = objectives.get(config.objective)
  return LanguageModel(config.model, objective.head, objective.nsp, rngs=nnx.Rngs(params=seed))


def abstract_model(config: Config) -> tuple[nnx.GraphDef, nnx.State]:
  return nnx.split(nnx.eval_shape(lambda: build_model(config, config.seed)))


def state_shardings(config: Config, mesh: Mesh, tx: optax.GradientTransformation) -> TrainState:
  """NamedShardings for every leaf of the TrainState: params by their logical axes, optimizer
  moments like the params they track, scalars replicated."""
  _, abstract_params = abstract_model(config)
  param_sh = sharding.named(mesh, sharding.param_specs(abstract_params))
  replicated = NamedSharding(mesh, P())
  abstract_opt = jax.eval_shape(tx.init, abstract_params)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, abstract_opt, param_sh,
                                 transform_non_params=lambda _: replicated,
                                 is_leaf=lambda x: isinstance(x, NamedSharding))
  return TrainState(step=replicated, params=param_sh, opt_state=opt_sh,
                    nonfinite_streak=replicated)


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


def count_params(params: nnx.State, *, include_positions: bool = True) -> int:
  total = 0
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    if not include_positions and "pos_embed" in jax.tree_util.keystr(path):
      continue
    total += leaf.size
  return total
