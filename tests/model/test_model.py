"""Attention-mask properties proven by gradients, and numerical equivalences of the backbone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers.model import SPECIAL, model, objective_batch, packed_batch, tiny_config

from jaxlm.model.attention_dropout import dropout_attention
from jaxlm.model.cache import KVCache
from jaxlm.model.kernels import attention as dot_product_attention
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives import objective_sums

T = 12


def _dependence(cfg, spec: MaskSpec, dropout_key=None) -> np.ndarray:
  """dep[i, j] = |d out[i] / d in[j]| for one row: which inputs each position sees."""
  m = model(cfg)
  backbone = m.backbone
  x_1xTxD = jax.random.normal(jax.random.key(1), (1, T, cfg.model.embed_dim))
  positions = jnp.arange(T)[None]

  # A random readout: the plain sum of a LayerNorm output is constant, with zero gradient.
  w_D = jax.random.normal(jax.random.key(2), (cfg.model.embed_dim,))

  def out_i(x, i):
    return backbone.encode(x, spec, positions, dropout_key)[0, i] @ w_D

  rows = [jnp.abs(jax.grad(out_i)(x_1xTxD, i)[0]).sum(-1) for i in range(T)]
  return np.asarray(jnp.stack(rows))


@pytest.mark.parametrize("position", ["learned", "rope", "sinusoidal"])
def test_clm_is_causal_by_gradient(position):
  dep = _dependence(tiny_config("clm", position=position), MaskSpec("causal"))
  future = np.triu(np.ones((T, T), bool), k=1)
  assert np.all(dep[future] == 0.0)
  assert np.all(dep[~future] > 0.0)


def test_clm_stays_causal_with_attention_and_residual_dropout():
  cfg = tiny_config("clm", dropout=0.1, attention_dropout=0.5)
  dep = _dependence(cfg, MaskSpec("causal"), jax.random.key(3))
  assert np.all(dep[np.triu(np.ones((T, T), bool), k=1)] == 0.0)
  assert np.any(dep != _dependence(cfg, MaskSpec("causal")))  # the dropout did act


def _qkv(B: int, T: int, H: int, K: int, seed: int = 0):
  keys = jax.random.split(jax.random.key(seed), 3)
  return [jax.random.normal(k, (B, T, H, K)) for k in keys]


@pytest.mark.parametrize("kind", ["causal", "prefix", "bidirectional"])
def test_attention_dropout_at_rate_zero_is_the_xla_kernel(kind):
  q, k, v = _qkv(2, T, 2, 8)
  seg = jnp.array([[1] * 7 + [2] * 3 + [0] * 2, [1] * T])
  spec = MaskSpec(kind, seg, jnp.array([4, 9]) if kind == "prefix" else None)
  np.testing.assert_allclose(dropout_attention(q, k, v, spec, 0.0, jax.random.key(0)),
                             dot_product_attention(q, k, v, spec, "xla"), rtol=1e-5, atol=1e-6)


def test_attention_dropout_drops_probabilities_at_its_rate_and_rescales_the_rest():
  B, S, H, rate = 4, 64, 2, 0.25
  q, k, _ = _qkv(B, S, H, S)
  # One-hot values: the output row of each query is its (dropped, rescaled) probability row.
  v = jnp.broadcast_to(jnp.eye(S)[None, :, None, :], (B, S, H, S))
  spec = MaskSpec("causal")
  probs = np.asarray(dropout_attention(q, k, v, spec, 0.0, jax.random.key(0)))
  out = np.asarray(dropout_attention(q, k, v, spec, rate, jax.random.key(1)))
  allowed = np.broadcast_to(np.tril(np.ones((S, S), bool))[None, :, None, :], out.shape)
  assert np.all(out[~allowed] == 0.0)
  kept = allowed & (out != 0.0)
  dropped = allowed.sum() - kept.sum()
  n = allowed.sum()
  assert abs(dropped / n - rate) < 4 * np.sqrt(rate * (1 - rate) / n)
  np.testing.assert_allclose(out[kept], probs[kept] / (1 - rate), rtol=1e-5)


def test_prefix_lm_is_bidirectional_inside_the_prefix_and_causal_after():
  prefix = 5
  spec = MaskSpec("prefix", prefix_len_B=jnp.array([prefix]))
  dep = _dependence(tiny_config("prefix_lm"), spec)
  allowed = np.tril(np.ones((T, T), bool))
  allowed[:, :prefix] = True
  assert np.all(dep[~allowed] == 0.0)
  assert np.all(dep[allowed] > 0.0)
  assert dep[0, prefix - 1] > 0.0  # the first token sees the end of the prefix


def test_mlm_is_bidirectional():
  dep = _dependence(tiny_config("mlm", norm="post"), MaskSpec("bidirectional"))
  assert np.all(dep > 0.0)


@pytest.mark.parametrize("kind", ["bidirectional", "causal"])
def test_attention_never_crosses_documents(kind):
  seg = jnp.array([[1] * 5 + [2] * 4 + [0] * 3])
  dep = _dependence(tiny_config(), MaskSpec(kind, seg))
  seg = np.asarray(seg[0])
  other_doc = (seg[:, None] != seg[None, :]) & (seg[:, None] > 0)
  assert np.all(dep[other_doc] == 0.0)


def _loss_and_grads(cfg, params_model, batch, key):
  graphdef, params = nnx.split(params_model)

  def loss(p):
    s = objective_sums(nnx.merge(graphdef, p), batch, key, cfg, SPECIAL, dropout=True)
    return s["loss_sum"] / s["count"]

  return jax.value_and_grad(loss)(params)


@pytest.mark.parametrize("objective", ["clm", "mlm", "mlm_nsp", "prefix_lm"])
def test_jit_equals_no_jit(objective):
  cfg = tiny_config(objective, dropout=0.1)
  batch = {k: jnp.asarray(v) for k, v in objective_batch(objective).items()}
  key = jax.random.key(3)
  m = model(cfg)
  eager_loss, eager_grads = _loss_and_grads(cfg, m, batch, key)
  jit_loss, jit_grads = jax.jit(lambda b, k: _loss_and_grads(cfg, m, b, k))(batch, key)
  np.testing.assert_allclose(eager_loss, jit_loss, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(eager_grads), jax.tree.leaves(jit_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("policy", ["full", "dots", "dots_no_batch"])
@pytest.mark.parametrize("scan", [True, False])
def test_remat_changes_nothing_numerically(policy, scan):
  batch = {k: jnp.asarray(v) for k, v in packed_batch().items()}
  key = jax.random.key(0)
  base_cfg = tiny_config("clm", scan_layers=scan)
  remat_cfg = tiny_config("clm", scan_layers=scan, remat=policy)
  loss0, grads0 = jax.jit(lambda: _loss_and_grads(base_cfg, model(base_cfg), batch, key))()
  loss1, grads1 = jax.jit(lambda: _loss_and_grads(remat_cfg, model(remat_cfg), batch, key))()
  np.testing.assert_allclose(loss0, loss1, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(grads0), jax.tree.leaves(grads1)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_dense_mask_matches_definition():
  seg = jnp.array([[1, 1, 1, 2, 2, 0]])
  mask = np.asarray(MaskSpec("prefix", seg, jnp.array([2])).dense(6)[0, 0])
  expected = np.array([
    [1, 1, 0, 0, 0, 0],
    [1, 1, 0, 0, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [0, 0, 0, 1, 0, 0],
    [0, 0, 0, 1, 1, 0],
    [0, 0, 0, 0, 0, 1],  # padding sees only itself
  ], bool)
  np.testing.assert_array_equal(mask, expected)


def test_token_types_enter_only_where_configured():
  tokens = jnp.asarray(packed_batch(B=2, T=T)["tokens"])
  spec = MaskSpec("bidirectional")
  typed = model(tiny_config("mlm", type_vocab_size=2)).backbone
  table = typed.type_embed.embedding
  assert not np.any(table[...])  # zeros at init: the same model as one without types
  table[...] = jax.random.normal(jax.random.key(0), table[...].shape) * 0.02  # as if trained
  zeros, ones = jnp.zeros_like(tokens), jnp.ones_like(tokens)
  h_none = typed(tokens, spec)
  np.testing.assert_allclose(h_none, typed(tokens, spec, token_types_BxT=zeros), atol=1e-6)
  assert not np.allclose(h_none, typed(tokens, spec, token_types_BxT=ones), atol=1e-3)
  plain = model(tiny_config("mlm")).backbone  # no table: token types are ignored
  assert not hasattr(plain, "type_embed")
  np.testing.assert_array_equal(plain(tokens, spec), plain(tokens, spec, token_types_BxT=ones))


def test_embed_norm_normalises_pre_ln_embeddings():
  cfg = tiny_config("mlm", embed_norm=True)
  backbone = model(cfg).backbone
  tokens = jnp.asarray(packed_batch(B=2, T=T)["tokens"])
  x = np.asarray(backbone.embed_tokens(tokens, jnp.broadcast_to(jnp.arange(T), tokens.shape)))
  np.testing.assert_allclose(x.mean(-1), 0, atol=1e-5)  # LayerNorm at init: scale 1, bias 0
  np.testing.assert_allclose(x.std(-1), 1, atol=1e-2)
  assert not hasattr(model(tiny_config("mlm")).backbone, "embed_norm")


def test_nsp_head_reads_the_first_position_only():
  cfg = tiny_config("mlm_nsp")
  lm = model(cfg)
  assert lm.nsp_head is not None and model(tiny_config("mlm")).nsp_head is None
  h = jax.random.normal(jax.random.key(0), (3, T, cfg.model.embed_dim))
  logits = lm.nsp_logits(h)
  assert logits.shape == (3, 2) and logits.dtype == jnp.float32
  np.testing.assert_array_equal(logits, lm.nsp_logits(h.at[:, 1:].set(0.0)))


def _queries(B: int) -> jnp.ndarray:
  """Three query positions per row, repeated and out of order, padding (15) included."""
  return jnp.asarray(np.array([[0, 13, 13], [15, 2, 9]] * (B // 2), np.int32))


_VARIANTS = [dict(), dict(norm="post", position="learned"), dict(scan_layers=True, remat="full"),
             dict(scan_layers=True, num_layers=1)]


@pytest.mark.parametrize("kind, variant", [
  (kind, variant) for kind in ("causal", "prefix", "bidirectional") for variant in _VARIANTS
] + [(kind, dict(attention="splash_interpret")) for kind in ("causal", "bidirectional")])
def test_the_last_layer_at_queries_equals_every_position_gathered(kind, variant):
  """Backbone(queries_BxQ=q): the last layer runs at q alone; its outputs and every parameter's
  gradient equal the full backbone's gathered at q, for every mask kind and segment layout (to
  float32 rounding: in float64 they agree to 1e-13)."""
  cfg = tiny_config("clm", **variant)
  batch = {k: jnp.asarray(v) for k, v in packed_batch(B=4, T=16).items()}
  spec = MaskSpec(kind, batch["segment_ids"],
                  jnp.array([3, 6, 9, 12]) if kind == "prefix" else None)
  q_BxQ = _queries(4)
  w_D = jax.random.normal(jax.random.key(2), (cfg.model.embed_dim,))
  graphdef, params = nnx.split(model(cfg).backbone)

  def read(p, queries):
    h = nnx.merge(graphdef, p)(batch["tokens"], spec, batch["positions"], queries_BxQ=queries)
    return h if queries is not None else jnp.take_along_axis(h, q_BxQ[..., None], axis=1)

  full, subset = read(params, None), jax.jit(read)(params, q_BxQ)
  assert subset.shape == (4, 3, cfg.model.embed_dim)
  np.testing.assert_allclose(subset, full, rtol=1e-5, atol=1e-5)
  grads = [jax.grad(lambda p, q=q: jnp.sum(jnp.tanh(read(p, q) @ w_D)))(params)
           for q in (None, q_BxQ)]
  scale = max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(grads[0]))
  for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):  # float32 rounding
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6 * scale)


def test_attention_dropout_at_queries_is_the_same_rows_of_the_full_pass():
  q, k, v = _qkv(2, T, 2, 8)
  seg = jnp.array([[1] * 7 + [2] * 3 + [0] * 2, [1] * T])
  spec = MaskSpec("causal", seg)
  queries = jnp.array([[0, 8, 11], [5, 5, 1]])
  full = dropout_attention(q, k, v, spec, 0.0, jax.random.key(0))
  rows = dropout_attention(jnp.take_along_axis(q, queries[..., None, None], axis=1), k, v, spec,
                           0.0, jax.random.key(0), queries)
  np.testing.assert_allclose(rows, jnp.take_along_axis(full, queries[..., None, None], axis=1),
                             rtol=1e-5, atol=1e-6)


def test_queries_are_refused_with_a_cache():
  cfg = tiny_config("clm")
  m = cfg.model
  cache = KVCache.empty(m.num_layers, 1, 16, m.num_heads, m.head_dim, jnp.float32)
  with pytest.raises(ValueError, match="queries_BxQ"):
    model(cfg).backbone(jnp.zeros((1, 4), jnp.int32), MaskSpec("causal"), cache=cache,
                        queries_BxQ=jnp.zeros((1, 1), jnp.int32))
