"""The device mesh and the one table that maps logical tensor axes to mesh axes.

Parameters carry logical axis names (`out_sharding` metadata, e.g. ('embed', 'mlp')); the rules
below turn them into PartitionSpecs. Changing the parallelism strategy means editing this table,
never a module.
"""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from flax.linen import spmd as linen_spmd
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxlm.config import MeshConfig
from jaxlm.errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")

# Logical axis -> mesh axes, in order of precedence. A mesh axis is used at most once per array
# (flax's resolver skips a rule whose mesh axis is taken), so activations ('batch', 'seq',
# 'embed') shard the batch over data x fsdp and leave 'embed' whole, while weights shard
# 'embed' over fsdp (ZeRO-3 style) and heads / mlp / vocab over tensor (Megatron style).
LOGICAL_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
  ("batch", ("data", "fsdp")),
  ("vocab", "tensor"),
  ("heads", "tensor"),
  ("mlp", "tensor"),
  ("embed", "fsdp"),
  ("layers", None),
  ("seq", None),
  ("kv", None),
  ("norm", None),
)


def mesh_shape(config: MeshConfig, num_devices: int) -> tuple[int, int, int]:
  """Resolves -1 to the devices the other axes leave; raises ConfigError if they do not fit."""
  sizes = [config.data, config.fsdp, config.tensor]
  fixed = int(np.prod([s for s in sizes if s != -1]))
  if -1 in sizes:
    if num_devices % fixed:
      raise ConfigError(
        f"config.mesh={sizes}: the fixed axes ({fixed} devices) do not divide the "
        f"{num_devices} available devices")
    sizes[sizes.index(-1)] = num_devices // fixed
  elif fixed != num_devices:
    raise ConfigError(
      f"config.mesh={sizes}: data*fsdp*tensor={fixed} but {num_devices} devices are available")
  return tuple(sizes)


def make_mesh(config: MeshConfig, devices: list | None = None) -> Mesh:
  # Auto axes: GSPMD propagates layouts from the annotated parameters and the constraints at
  # block boundaries, so model code needs no per-op output shardings.
  devices = list(jax.devices() if devices is None else devices)
  shape = mesh_shape(config, len(devices))
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 3, devices=devices)


def logical_to_spec(names: tuple[str | None, ...] | None) -> P:
  """('embed', 'mlp') -> P('fsdp', 'tensor') under LOGICAL_RULES."""
  if not names:
    return P()
  return linen_spmd.logical_to_mesh_axes(names, LOGICAL_RULES)


def param_specs(abstract_state: nnx.State) -> nnx.State:
  """PartitionSpec for each variable of an (abstract) model state, from its logical names."""

  def spec(variable):
    return variable.replace(logical_to_spec(variable.get_metadata().get("out_sharding")))

  return jax.tree.map(spec, abstract_state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def named(mesh: Mesh, specs):
  return jax.tree.map(lambda s: NamedSharding(mesh, s), specs,
                      is_leaf=lambda x: isinstance(x, P))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Every batch field ((B, T) rows, (B,) labels) is sharded over data x fsdp on its leading
  batch axis; the rest of each array stays whole."""
  return NamedSharding(mesh, logical_to_spec(("batch",)))


def constrain(x: jax.Array, names: tuple[str | None, ...]) -> jax.Array:
  """Pins an activation's layout at a block boundary; a no-op outside a mesh context."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return x
  return jax.lax.with_sharding_constraint(x, logical_to_spec(names))
