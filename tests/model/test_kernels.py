"""The contract every registered attention kernel meets: `MaskSpec.dense` semantics for every
mask kind, with segment ids (on the backends where it runs)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlm.errors import ConfigError
from jaxlm.model import kernels
from jaxlm.model.masks import MaskSpec

B, T, H, K = 2, 16, 2, 8


def _reference(q, k, v, spec):
  scores = jnp.einsum("bthk,bshk->bhts", q, k) / np.sqrt(K)
  scores = jnp.where(spec.dense(T), scores, -jnp.inf)
  return jnp.einsum("bhts,bshk->bthk", jax.nn.softmax(scores, -1), v)


SPECS = {
  "causal": MaskSpec("causal"),
  "bidirectional": MaskSpec("bidirectional"),
  "prefix": MaskSpec("prefix", prefix_len_B=jnp.array([3, 9])),
  "packed-causal": MaskSpec("causal", jnp.array([[1] * 10 + [2] * 6, [1] * 12 + [0] * 4])),
}


# Absolute tolerance per compute dtype: float32 is exact to rounding; bf16 keeps 8 bits of
# mantissa, so outputs of order 1 carry errors of order 1e-2 (METHOD: 1e-3 to 1e-2 relative).
TOLERANCE = {"float32": 2e-5, "bfloat16": 3e-2}


@pytest.mark.parametrize("dtype", sorted(TOLERANCE))
@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("name", sorted(kernels.KERNELS))
def test_kernel_matches_the_dense_mask(name, spec_name, dtype):
  kernel = kernels.get(name)
  if jax.default_backend() not in kernel.backends:  # e.g. cudnn on CPU
    pytest.skip(f"{name} runs on {kernel.runs_on}, not {jax.default_backend()}")
  if dtype not in kernel.dtypes:
    with pytest.raises(ConfigError, match=f"computes in .*not model.dtype={dtype}"):
      kernels.resolve(name, dtype)
    return
  assert kernels.resolve(name, dtype) == name  # where it is declared to run, it resolves
  q, k, v = jax.random.normal(jax.random.key(0), (3, B, T, H, K)).astype(dtype)
  spec = SPECS[spec_name]
  with jax.default_matmul_precision("highest"):  # the float32 reference, not TF32
    got = jax.jit(kernels.attention, static_argnames="kernel")(q, k, v, spec, kernel=name)
    want = _reference(*(x.astype(jnp.float32) for x in (q, k, v)), spec)
  np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want), atol=TOLERANCE[dtype])


@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("name", sorted(kernels.KERNELS))
def test_kernel_gradient_matches_the_dense_mask(name, spec_name):
  """The backward pass too (the xla kernel writes its own): float32 gradients of q, k and v
  against autodiff of the reference."""
  kernel = kernels.get(name)
  if jax.default_backend() not in kernel.backends or "float32" not in kernel.dtypes:
    pytest.skip(f"{name} runs on {kernel.runs_on} in {', '.join(kernel.dtypes)}")
  q, k, v, w = jax.random.normal(jax.random.key(1), (4, B, T, H, K))
  spec = SPECS[spec_name]

  def loss(attend):
    return lambda q, k, v: jnp.sum(attend(q, k, v, spec) * w)

  with jax.default_matmul_precision("highest"):
    got = jax.jit(jax.grad(loss(lambda *a: kernels.attention(*a, kernel=name)), (0, 1, 2)))(q, k, v)
    want = jax.grad(loss(_reference), (0, 1, 2))(q, k, v)
  for g, r in zip(got, want):
    np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=2e-5)


@pytest.mark.parametrize("length", [15, 16])
def test_xla_causal_halves_equal_one_block(length):
  """The xla kernel computes a causal mask's two query halves apart (the first over the first
  half of the keys); values and gradients equal one dense block, odd lengths included."""
  from jaxlm.model.kernels import xla  # noqa: PLC0415

  q, k, v, w = jax.random.normal(jax.random.key(2), (4, B, length, H, K))
  segments = jnp.array([[1] * 9 + [2] * (length - 9), [1] * (length - 3) + [0] * 3])
  spec = MaskSpec("causal", segments)

  def loss(attend):
    return lambda q, k, v: jnp.sum(attend(q, k, v) * w)

  halves = lambda q, k, v: xla.attention(q, k, v, spec)
  one = lambda q, k, v: xla.dense_attention(q, k, v, spec.dense(length))
  np.testing.assert_allclose(halves(q, k, v), one(q, k, v), atol=1e-6)
  for g, r in zip(jax.grad(loss(halves), (0, 1, 2))(q, k, v), jax.grad(loss(one), (0, 1, 2))(q, k, v)):
    np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=1e-6)


def test_auto_picks_by_backend_and_dtype():
  assert kernels.resolve("auto", "float32", backend="cpu") == "xla"
  assert kernels.resolve("auto", "bfloat16", backend="gpu") == "cudnn"
  assert kernels.resolve("auto", "float32", backend="gpu") == "xla"
  assert kernels.resolve("auto", "bfloat16", backend="tpu") == "splash"
  with pytest.raises(ConfigError, match="attention='nope'|attention=.nope."):
    kernels.get("nope")
