"""The MLP's activations: exact GELU through erf equals jax's erfc form and torch's, in value,
slope and curvature."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlm.model.activations import ACTIVATIONS, gelu_exact

X = jnp.linspace(-8.0, 8.0, 4001, dtype=jnp.float32)


def reference(x):
  return jax.nn.gelu(x, approximate=False)


def test_gelu_exact_value_and_derivatives_match_jax():
  np.testing.assert_allclose(gelu_exact(X), reference(X), atol=2e-6, rtol=1e-6)
  slope, reference_slope = (jax.vmap(jax.grad(f))(X) for f in (gelu_exact, reference))
  np.testing.assert_allclose(slope, reference_slope, atol=2e-6, rtol=1e-6)
  curve, reference_curve = (jax.vmap(jax.grad(jax.grad(f)))(X) for f in (gelu_exact, reference))
  np.testing.assert_allclose(curve, reference_curve, atol=2e-6, rtol=1e-5)


def test_gelu_exact_jit_and_bfloat16():
  np.testing.assert_allclose(jax.jit(gelu_exact)(X), gelu_exact(X), atol=1e-6, rtol=1e-6)
  x16 = X.astype(jnp.bfloat16)
  assert gelu_exact(x16).dtype == jnp.bfloat16
  np.testing.assert_allclose(gelu_exact(x16).astype(jnp.float32), reference(x16).astype(jnp.float32),
                             atol=2e-2, rtol=1e-2)


def test_gelu_exact_matches_torch():
  torch = pytest.importorskip("torch")
  expected = torch.nn.functional.gelu(torch.from_numpy(np.asarray(X))).numpy()
  np.testing.assert_allclose(gelu_exact(X), expected, atol=1e-6, rtol=1e-6)


def test_registry_names():
  assert set(ACTIVATIONS) == {"gelu_tanh", "gelu_exact"}
  np.testing.assert_allclose(ACTIVATIONS["gelu_tanh"](X), jax.nn.gelu(X, approximate=True))
