"""Exact partition specs on a 2x2x2 mesh, and the same losses on 1 device and on 8."""

import jax
import numpy as np
import pytest
from helpers.model import SPECIAL, objective_batch, tiny_config
from jax.sharding import PartitionSpec as P

from jaxlm import sharding
from jaxlm.config import ConfigError, MeshConfig
from jaxlm.train.optim import make_optimizer
from jaxlm.train.state import create_train_state
from jaxlm.train.step import jit_steps


def _mesh(data, fsdp, tensor, devices=None):
  return sharding.make_mesh(MeshConfig(data, fsdp, tensor), devices)


def _specs(tree) -> dict[str, P]:
  return {jax.tree_util.keystr(path): leaf.sharding.spec
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_mesh_fills_the_minus_one_axis_and_rejects_bad_shapes():
  assert sharding.mesh_shape(MeshConfig(-1, 2, 2), 8) == (2, 2, 2)
  assert sharding.mesh_shape(MeshConfig(2, -1, 1), 8) == (2, 4, 1)
  with pytest.raises(ConfigError, match="do not divide"):
    sharding.mesh_shape(MeshConfig(-1, 3, 1), 8)
  with pytest.raises(ConfigError, match="data\\*fsdp\\*tensor=4 but 8"):
    sharding.mesh_shape(MeshConfig(2, 2, 1), 8)


def test_exact_partition_specs_on_a_2x2x2_mesh():
  cfg = tiny_config("mlm")
  mesh = _mesh(2, 2, 2)
  _, state, _ = create_train_state(cfg, mesh, make_optimizer(cfg.optimizer, cfg.steps))
  specs = _specs(state.params)
  pre = "['backbone']"
  expected = {
    f"{pre}['embed']['embedding'].value": P("tensor", "fsdp"),
    f"{pre}['pos_embed']['embedding'].value": P(None, "fsdp"),
    f"{pre}['blocks']['attn']['query']['kernel'].value": P(None, "fsdp", "tensor", None),
    f"{pre}['blocks']['attn']['query']['bias'].value": P(None, "tensor", None),
    f"{pre}['blocks']['attn']['out']['kernel'].value": P(None, "tensor", None, "fsdp"),
    f"{pre}['blocks']['attn']['out']['bias'].value": P(None, None),
    f"{pre}['blocks']['mlp']['fc_in']['kernel'].value": P(None, "fsdp", "tensor"),
    f"{pre}['blocks']['mlp']['fc_in']['bias'].value": P(None, "tensor"),
    f"{pre}['blocks']['mlp']['fc_out']['kernel'].value": P(None, "tensor", "fsdp"),
    f"{pre}['blocks']['attn_norm']['scale'].value": P(None, None),
    f"{pre}['norm']['scale'].value": P(None),
    "['mlm_head']['bias'].value": P("tensor"),
    "['mlm_head']['transform']['kernel'].value": P("fsdp", None),
  }
  for name, spec in expected.items():
    assert specs[name] == spec, name
  # Every parameter is sharded as declared, and Adam's moments exactly like their parameter.
  mu = state.opt_state[1][0].mu
  assert _specs(mu) == specs
  # A shard is what it should be: the embedding (256 x 32) split 2 x 2.
  embed = state.params["backbone"]["embed"]["embedding"][...]
  assert {s.data.shape for s in embed.addressable_shards} == {(128, 16)}


def _losses(cfg, mesh, steps=3, metric="loss"):
  tx = make_optimizer(cfg.optimizer, cfg.steps)
  graphdef, state, state_sh = create_train_state(cfg, mesh, tx)
  batch_sh = sharding.batch_sharding(mesh)
  train_step, _ = jit_steps(graphdef, cfg, SPECIAL, tx, state_sh, batch_sh)
  losses = []
  with jax.set_mesh(mesh):
    for i in range(steps):
      batch = {k: jax.device_put(v, batch_sh)
               for k, v in objective_batch(cfg.objective).items()}
      state, metrics = train_step(state, batch)
      losses.append(float(metrics[metric]))
  return np.array(losses), train_step


@pytest.mark.parametrize("objective", ["clm", "mlm", "mlm_nsp", "prefix_lm"])
def test_same_losses_on_one_device_and_on_a_2x2x2_mesh(objective):
  cfg = tiny_config(objective)
  # MLM + NSP: on one repeated batch the NSP part falls steadily, the masked part (new masks each
  # step) only on average.
  metric = "nsp_loss" if objective == "mlm_nsp" else "loss"
  one, _ = _losses(cfg, _mesh(1, 1, 1, jax.devices()[:1]), metric=metric)
  eight, _ = _losses(cfg, _mesh(2, 2, 2), metric=metric)
  assert one[-1] < one[0]  # it trains
  np.testing.assert_allclose(one, eight, rtol=2e-5)


def test_the_step_compiles_once():
  cfg = tiny_config("mlm")
  _, train_step = _losses(cfg, _mesh(2, 2, 2), steps=6)
  assert train_step._cache_size() == 1


def test_batches_arrive_sharded_over_data_and_fsdp():
  mesh = _mesh(2, 2, 2)
  x = jax.device_put(np.zeros((8, 16), np.int32), sharding.batch_sharding(mesh))
  assert x.sharding.spec == P(("data", "fsdp"))
  assert {s.data.shape for s in x.addressable_shards} == {(2, 16)}
