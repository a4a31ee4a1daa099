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


@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("name", sorted(kernels.KERNELS))
def test_kernel_matches_the_dense_mask(name, spec_name):
  if jax.default_backend() not in kernels.get(name).backends:  # e.g. cudnn on CPU
    pytest.skip(f"{name} runs on {kernels.get(name).runs_on}, not {jax.default_backend()}")
  assert kernels.resolve(name, "float32") == name  # where it is declared to run, it resolves
  q, k, v = jax.random.normal(jax.random.key(0), (3, B, T, H, K))
  spec = SPECS[spec_name]
  got = jax.jit(kernels.attention, static_argnames="kernel")(q, k, v, spec, kernel=name)
  np.testing.assert_allclose(np.asarray(got), np.asarray(_reference(q, k, v, spec)), atol=2e-5)


def test_auto_picks_by_backend_and_dtype():
  assert kernels.resolve("auto", "float32", backend="cpu") == "xla"
  assert kernels.resolve("auto", "bfloat16", backend="gpu") == "cudnn"
  assert kernels.resolve("auto", "float32", backend="gpu") == "xla"
  assert kernels.resolve("auto", "bfloat16", backend="tpu") == "splash"
  with pytest.raises(ConfigError, match="attention='nope'|attention=.nope."):
    kernels.get("nope")
