"""flat_dot_general: lax.dot_general's values and gradients, with 2-D products only."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxlm.model.flat_dot import flat_dot_general

# (lhs shape, rhs shape, dimension numbers) as nnx.Linear / LinearGeneral call dot_general.
DENSE = {
  "linear [B,T,D] x [D,F]": ((2, 5, 8), (8, 6), (((2,), (0,)), ((), ()))),
  "qkv [B,T,D] x [D,H,K]": ((2, 5, 8), (8, 3, 4), (((2,), (0,)), ((), ()))),
  "out [B,T,H,K] x [H,K,D]": ((2, 5, 3, 4), (3, 4, 8), (((2, 3), (0, 1)), ((), ()))),
}


def _operands(lhs_shape, rhs_shape):
  k1, k2 = jax.random.split(jax.random.key(0))
  return jax.random.normal(k1, lhs_shape), jax.random.normal(k2, rhs_shape)


def _dots(fn, *operands):
  """Ranks of every dot_general's operands in fn's jaxpr (pjit bodies included)."""
  ranks = []

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive is lax.dot_general_p:
        ranks.append(tuple(v.aval.ndim for v in eqn.invars))
      for param in eqn.params.values():  # the bodies of pjit, custom_jvp, ...
        inner = getattr(param, "jaxpr", param)
        if hasattr(inner, "eqns"):
          walk(inner)

  walk(jax.make_jaxpr(fn)(*operands).jaxpr)
  return ranks


@pytest.mark.parametrize("case", DENSE)
def test_values_and_gradients_match_dot_general(case):
  lhs_shape, rhs_shape, dims = DENSE[case]
  lhs, rhs = _operands(lhs_shape, rhs_shape)
  want = lax.dot_general(lhs, rhs, dims)
  got = flat_dot_general(lhs, rhs, dims)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

  def loss(dot):
    return lambda a, b: jnp.sum(jnp.sin(dot(a, b, dims)))

  want_grads = jax.grad(loss(lax.dot_general), argnums=(0, 1))(lhs, rhs)
  got_grads = jax.jit(jax.grad(loss(flat_dot_general), argnums=(0, 1)))(lhs, rhs)
  for g, w in zip(got_grads, want_grads):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", DENSE)
def test_forward_and_backward_are_two_dimensional_products(case):
  """The property the module exists for: autodiff's weight gradient contracts one row axis."""
  lhs_shape, rhs_shape, dims = DENSE[case]
  lhs, rhs = _operands(lhs_shape, rhs_shape)
  grad = jax.grad(lambda a, b: jnp.sum(flat_dot_general(a, b, dims) ** 2), argnums=(0, 1))
  assert _dots(grad, lhs, rhs) and all(r == (2, 2) for r in _dots(grad, lhs, rhs))
  # lax.dot_general itself does contract several axes at once here (what the module avoids).
  plain = jax.grad(lambda a, b: jnp.sum(lax.dot_general(a, b, dims) ** 2), argnums=(0, 1))
  assert any(r != (2, 2) for r in _dots(plain, lhs, rhs))


@pytest.mark.parametrize("lhs_shape, rhs_shape, dims", [
  ((5, 8), (8, 6), (((1,), (0,)), ((), ()))),  # already 2-D
  ((2, 5, 8), (2, 8, 6), (((2,), (1,)), ((0,), (0,)))),  # batched
  ((2, 8, 5), (8, 6), (((1,), (0,)), ((), ()))),  # contracts a middle axis
])
def test_other_contractions_are_lax_dot_general(lhs_shape, rhs_shape, dims):
  lhs, rhs = _operands(lhs_shape, rhs_shape)
  np.testing.assert_array_equal(flat_dot_general(lhs, rhs, dims), lax.dot_general(lhs, rhs, dims))


def test_preferred_element_type_is_kept():
  lhs, rhs = _operands((2, 5, 8), (8, 6))
  dims = (((2,), (0,)), ((), ()))
  got = flat_dot_general(lhs.astype(jnp.bfloat16), rhs.astype(jnp.bfloat16), dims,
                         preferred_element_type=jnp.float32)
  assert got.dtype == jnp.float32 and got.shape == (2, 5, 6)


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_the_backbone_and_mlm_head_use_it(objective):
  """Every dense layer that sees [B, T, ...] activations computes through flat_dot_general."""
  from flax import nnx  # noqa: PLC0415
  from helpers.model import model, tiny_config  # noqa: PLC0415

  m = model(tiny_config(objective))
  dense = [(path, layer) for path, layer in nnx.iter_graph(m)
           if isinstance(layer, (nnx.Linear, nnx.LinearGeneral))]
  # query, key, value, out and the MLP's two per block (one stacked block when scanned), plus
  # the MLM head's transform
  cfg = m.backbone.cfg
  blocks = 1 if cfg.scan_layers else cfg.num_layers
  assert len(dense) == 6 * blocks + (objective == "mlm")
  assert all(layer.dot_general is flat_dot_general for _, layer in dense), dense
