"""The splash kernel (Pallas interpret mode on CPU) against the XLA dense-mask reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlm.errors import ConfigError
from jaxlm.model import kernels
from jaxlm.model.kernels import splash
from jaxlm.model.masks import MaskSpec
from jaxlm.sharding import MESH_AXES

B, T, H, K = 2, 256, 2, 64
TOL = 1e-5
DEFAULT_BLOCKS = splash._BLOCKS


@pytest.fixture(autouse=True)
def _blocks_of_128(monkeypatch):
  # 2 x 2 tiles of 128 at T=256 (default would be one 256 tile): exercises the skipped and
  # partial blocks of the causal and prefix masks.
  monkeypatch.setattr(splash, "_BLOCKS", (128,))


def _qkv():
  return [jax.random.normal(jax.random.key(i), (B, T, H, K), jnp.float32) for i in range(3)]


def _segments() -> jax.Array:
  seg = np.zeros((B, T), np.int32)
  seg[0, :100], seg[0, 100:200], seg[0, 200:240] = 1, 2, 3  # 3 documents, 16 padding
  seg[1, :150], seg[1, 150:220] = 1, 2  # 2 documents, 36 padding
  return jnp.asarray(seg)


PREFIX_B = jnp.array([37, 200])
SPECS = {
  "causal": MaskSpec("causal"),
  "bidirectional": MaskSpec("bidirectional"),
  "causal_packed": MaskSpec("causal", _segments()),
  "bidirectional_packed": MaskSpec("bidirectional", _segments()),
  "prefix": MaskSpec("prefix", None, PREFIX_B),
  "prefix_packed": MaskSpec("prefix", _segments(), PREFIX_B),
}


@jax.jit
def _reference(q, k, v, spec):
  return jax.nn.dot_product_attention(q, k, v, mask=spec.dense(q.shape[1]), implementation="xla")


def _splash(q, k, v, spec):
  return jax.jit(lambda q, k, v, s: splash.splash_attention(q, k, v, s, interpret=True))(
    q, k, v, spec)


@pytest.mark.parametrize("name", [n for n in SPECS if n != "prefix_packed"])
def test_matches_dense_mask_reference(name):
  spec = SPECS[name]
  q, k, v = _qkv()
  got, want = np.asarray(_splash(q, k, v, spec)), np.asarray(_reference(q, k, v, spec))
  assert got.shape == (B, T, H, K)
  # All rows, padding included: a padding query attends to itself only, as in MaskSpec.dense.
  np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_packed_prefix_lm_output_and_gradients_match():
  # The most general mask (dynamic prefix + segments); one compile for the forward and backward.
  spec = SPECS["prefix_packed"]
  ct_BxTxHxK = jax.random.normal(jax.random.key(9), (B, T, H, K))

  def forward_backward(attend):
    def f(q, k, v):
      o, pullback = jax.vjp(lambda q, k, v: attend(q, k, v, spec), q, k, v)
      return o, pullback(ct_BxTxHxK)
    return jax.jit(f)

  got = forward_backward(lambda *a: splash.splash_attention(*a, interpret=True))(*_qkv())
  want = forward_backward(lambda *a: jax.nn.dot_product_attention(
    *a[:3], mask=a[3].dense(T), implementation="xla"))(*_qkv())
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=TOL, rtol=0)


def test_inside_a_mesh_runs_under_shard_map():
  # Batch over data (2), heads over tensor (2): each device runs splash on a (1, T, 1, K) shard.
  mesh = jax.make_mesh((2, 1, 2), MESH_AXES, devices=jax.devices()[:4],
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  spec = SPECS["prefix_packed"]
  q, k, v = _qkv()
  with jax.set_mesh(mesh):
    got = _splash(q, k, v, spec)
  np.testing.assert_allclose(np.asarray(got), np.asarray(_reference(q, k, v, spec)),
                             atol=TOL, rtol=0)


def test_the_registry_loads_splash_only_when_asked_and_dispatches_to_it():
  assert kernels.get("splash_interpret").attention.__name__ == "_interpreted"
  with pytest.raises(ConfigError, match="splash_interpret"):
    if jax.default_backend() != "tpu":
      kernels.resolve("splash", "float32")
    else:
      raise ConfigError("splash_interpret")  # on TPU splash is allowed: nothing to refuse
  # Dispatch through the public entry point (T=12: the XLA fallback, so no extra kernel compile).
  q, k, v = (x[:, :12] for x in _qkv())
  spec = MaskSpec("causal")
  np.testing.assert_allclose(
    np.asarray(jax.jit(kernels.attention, static_argnames="kernel")(
      q, k, v, spec, kernel="splash_interpret")),
    np.asarray(_reference(q, k, v, spec)), atol=TOL, rtol=0)


def test_block_size_is_the_largest_tile_dividing_T(monkeypatch):
  monkeypatch.setattr(splash, "_BLOCKS", DEFAULT_BLOCKS)
  lengths = (12, 100, 128, 256, 384, 640, 1024, 2048)
  assert [splash.block_size(T_) for T_ in lengths] == [None, None, 128, 256, 128, 128, 512, 512]


def test_untileable_length_falls_back_to_xla_even_without_interpret():
  # T % 128 != 0: the dense XLA path, which also runs on CPU without interpret mode.
  T_ = 12
  q, k, v = (x[:, :T_] for x in _qkv())
  spec = MaskSpec("prefix", jnp.array([[1] * 8 + [0] * 4, [1] * 5 + [2] * 7]), jnp.array([3, 6]))
  np.testing.assert_allclose(np.asarray(jax.jit(splash.splash_attention)(q, k, v, spec)),
                             np.asarray(_reference(q, k, v, spec)), atol=TOL, rtol=0)


def test_the_compiled_kernel_runs_on_tpu_and_is_refused_elsewhere():
  q, k, v = _qkv()
  if jax.default_backend() == "tpu":  # the real kernel, against the XLA reference
    spec = MaskSpec("causal")
    np.testing.assert_allclose(np.asarray(splash.splash_attention(q, k, v, spec)),
                               np.asarray(_reference(q, k, v, spec)), atol=1e-2, rtol=0)
    return
  with pytest.raises(ValueError, match="TPU-only"):
    splash.splash_attention(q, k, v, MaskSpec("causal"))


def test_kernel_table_lists_every_registered_kernel():
  table = kernels.table()
  for name in kernels.KERNELS:
    assert f"| `{name}` |" in table
