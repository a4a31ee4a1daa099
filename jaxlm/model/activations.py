"""The MLP's activations, by the names `model.activation` takes."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

SQRT_HALF = math.sqrt(0.5)
INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _normal_cdf(x: jax.Array) -> jax.Array:
  return 0.5 + 0.5 * jax.lax.erf(x * SQRT_HALF)


@jax.custom_jvp
def gelu_exact(x: jax.Array) -> jax.Array:
  """x Phi(x), Phi the standard normal CDF through erf, as torch and transformers compute it.

  `jax.nn.gelu(approximate=False)` writes Phi through erfc(-x / sqrt 2), which XLA:CPU expands
  into an exponential and branches: 3.5x slower than erf's one rational polynomial over the
  main job's MLP activations (benchmarks/README.md). The two agree to 1e-6 in value and slope.
  The derivative Phi(x) + x phi(x) is written out, so the backward pass multiplies by one saved
  array."""
  return x * _normal_cdf(x)


@gelu_exact.defjvp
def _gelu_exact_jvp(primals, tangents):
  (x,), (dx,) = primals, tangents
  cdf = _normal_cdf(x)
  pdf = jnp.exp(-0.5 * x * x) * INV_SQRT_2PI
  return x * cdf, (cdf + x * pdf) * dx


ACTIVATIONS = {
  "gelu_tanh": lambda x: jax.nn.gelu(x, approximate=True),
  "gelu_exact": gelu_exact,
}
