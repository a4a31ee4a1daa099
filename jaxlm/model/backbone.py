"""The shared Transformer backbone and the objective heads (Flax NNX).

One backbone serves BERT, GPT and prefix-LM: they differ in the `MaskSpec` handed to attention and
in the head on top. Every parameter carries logical axis names (see `sharding.LOGICAL_RULES`).
Tensors are named by shape: B batch, T sequence, D embed, H heads, K head dim, F mlp, V vocab,
L layers, M predicted (masked) positions.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlm import sharding
from jaxlm.config import ModelConfig
from jaxlm.model import kernels
from jaxlm.model.activations import ACTIVATIONS
from jaxlm.model.attention_dropout import dropout_attention
from jaxlm.model.cache import KVCache
from jaxlm.model.flat_dot import flat_dot_general
from jaxlm.model.masks import MaskSpec

# Parameters carry logical axis names ('embed', 'mlp'), not mesh axes, so flax must not shard
# them at creation; train/state.py shards the whole state at once, inside jit, by the rules.
nnx.use_eager_sharding(False)

REMAT_POLICIES = {
  "full": None,  # save nothing, recompute the whole block
  "dots": jax.checkpoint_policies.checkpoint_dots,
  "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def normal_init(names: tuple[str | None, ...], stddev: float = 0.02):
  return nnx.with_partitioning(nnx.initializers.normal(stddev), names)


def zeros_init(names: tuple[str | None, ...]):
  return nnx.with_partitioning(nnx.initializers.zeros_init(), names)


def layer_norm(cfg: ModelConfig, rngs: nnx.Rngs) -> nnx.LayerNorm:
  return nnx.LayerNorm(
    cfg.embed_dim, epsilon=cfg.layer_norm_eps, dtype=cfg.dtype, param_dtype=cfg.param_dtype,
    scale_init=nnx.with_partitioning(nnx.initializers.ones_init(), ("norm",)),
    bias_init=zeros_init(("norm",)), rngs=rngs)


def sinusoidal_BxTxD(positions_BxT: jax.Array, D: int) -> jax.Array:
  """The fixed sin/cos position table of 'Attention Is All You Need'."""
  inv_freq = 1.0 / (10000.0 ** (jnp.arange(0, D, 2) / D))
  angles_BxTxD2 = positions_BxT[..., None].astype(jnp.float32) * inv_freq
  return jnp.concatenate([jnp.sin(angles_BxTxD2), jnp.cos(angles_BxTxD2)], axis=-1)


def at_rows(x_BxTx___: jax.Array, queries_BxQ: jax.Array | None) -> jax.Array:
  """x at the positions `queries_BxQ` along T (x itself when None): [B, Q, ...]."""
  if queries_BxQ is None:
    return x_BxTx___
  index = queries_BxQ.reshape(queries_BxQ.shape + (1,) * (x_BxTx___.ndim - 2))
  return jnp.take_along_axis(x_BxTx___, index, axis=1)


def rope(x_BxTxHxK: jax.Array, positions_BxT: jax.Array, theta: float) -> jax.Array:
  """Rotary position embedding (RoFormer), rotating the two halves of each head."""
  K = x_BxTxHxK.shape[-1]
  inv_freq = 1.0 / (theta ** (jnp.arange(0, K, 2) / K))
  angles_BxTx1xK2 = (positions_BxT[..., None].astype(jnp.float32) * inv_freq)[:, :, None, :]
  sin, cos = jnp.sin(angles_BxTx1xK2), jnp.cos(angles_BxTx1xK2)
  x1, x2 = jnp.split(x_BxTxHxK.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxTxHxK.dtype)


class Attention(nnx.Module):

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    H, K, D = cfg.num_heads, cfg.head_dim, cfg.embed_dim
    proj = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype, dot_general=flat_dot_general,
                rngs=rngs)
    qkv = dict(kernel_init=normal_init(("embed", "heads", "kv")), bias_init=zeros_init(("heads", "kv")))
    self.query = nnx.LinearGeneral(D, (H, K), **qkv, **proj)
    self.key = nnx.LinearGeneral(D, (H, K), **qkv, **proj)
    self.value = nnx.LinearGeneral(D, (H, K), **qkv, **proj)
    # GPT-2 scales the init of projections that write into the residual stream by 1/sqrt(2L).
    out_std = 0.02 / math.sqrt(2 * cfg.num_layers) if cfg.norm == "pre" else 0.02
    self.out = nnx.LinearGeneral((H, K), D, axis=(-2, -1),
                                 kernel_init=normal_init(("heads", "kv", "embed"), out_std),
                                 bias_init=zeros_init(("norm",)), **proj)
    self.kernel = kernels.resolve(cfg.attention, cfg.dtype)

  def __call__(self, x_BxTxD: jax.Array, spec: MaskSpec, positions_BxT: jax.Array,
               dropout_key: jax.Array | None = None, cache: KVCache | None = None,
               queries_BxQ: jax.Array | None = None) -> tuple[jax.Array, KVCache | None]:
    """Self-attention under `spec`. With a `cache` (generation: `spec` is causal), this chunk's
    keys and values are written into the cache and its queries attend to the cache's valid
    slots. With `queries_BxQ` (no cache), only the queries at those positions attend, to every
    key `spec` allows them. Returns (o_BxTxD, or o_BxQxD; the updated cache or None)."""
    q_BxQxHxK = self.query(at_rows(x_BxTxD, queries_BxQ))
    k_BxTxHxK, v_BxTxHxK = self.key(x_BxTxD), self.value(x_BxTxD)
    if self.cfg.position == "rope":
      q_BxQxHxK = rope(q_BxQxHxK, at_rows(positions_BxT, queries_BxQ), self.cfg.rope_theta)
      k_BxTxHxK = rope(k_BxTxHxK, positions_BxT, self.cfg.rope_theta)
    if cache is not None:
      cache = cache.write(k_BxTxHxK, v_BxTxHxK)
      o_BxQxHxK = kernels.cached_attention(q_BxQxHxK, cache)
    elif dropout_key is not None and self.cfg.attention_dropout > 0:
      o_BxQxHxK = dropout_attention(q_BxQxHxK, k_BxTxHxK, v_BxTxHxK, spec,
                                    self.cfg.attention_dropout, dropout_key, queries_BxQ)
    elif queries_BxQ is not None:
      o_BxQxHxK = kernels.attention_from(q_BxQxHxK, k_BxTxHxK, v_BxTxHxK, spec, queries_BxQ)
    else:
      o_BxQxHxK = kernels.attention(q_BxQxHxK, k_BxTxHxK, v_BxTxHxK, spec, self.kernel)
    return self.out(o_BxQxHxK), cache


class Mlp(nnx.Module):

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    proj = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype, dot_general=flat_dot_general,
                rngs=rngs)
    out_std = 0.02 / math.sqrt(2 * cfg.num_layers) if cfg.norm == "pre" else 0.02
    self.activation = ACTIVATIONS[cfg.activation]
    self.fc_in = nnx.Linear(cfg.embed_dim, cfg.mlp_dim, kernel_init=normal_init(("embed", "mlp")),
                            bias_init=zeros_init(("mlp",)), **proj)
    self.fc_out = nnx.Linear(cfg.mlp_dim, cfg.embed_dim,
                             kernel_init=normal_init(("mlp", "embed"), out_std),
                             bias_init=zeros_init(("norm",)), **proj)

  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    h_BxTxF = sharding.constrain(self.activation(self.fc_in(x_BxTxD)), ("batch", "seq", "mlp"))
    return self.fc_out(h_BxTxF)


class Block(nnx.Module):
  """One Transformer layer, pre-LN (GPT-2) or post-LN (BERT)."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.pre_norm = cfg.norm == "pre"
    self.attn_norm = layer_norm(cfg, rngs)
    self.attn = Attention(cfg, rngs=rngs)
    self.mlp_norm = layer_norm(cfg, rngs)
    self.mlp = Mlp(cfg, rngs=rngs)
    self.dropout = nnx.Dropout(cfg.dropout)

  def __call__(self, x_BxTxD: jax.Array, spec: MaskSpec, positions_BxT: jax.Array,
               dropout_key: jax.Array | None = None, cache: KVCache | None = None,
               queries_BxQ: jax.Array | None = None) -> tuple[jax.Array, KVCache | None]:
    """x_BxTxD through the layer; with `queries_BxQ`, only those positions' outputs (x_BxQxD),
    their attention over every position's keys and values and the rest on them alone."""
    deterministic = dropout_key is None
    k1, k2 = jax.random.split(dropout_key) if dropout_key is not None else (None, None)
    k_attn = jax.random.fold_in(dropout_key, 2) if dropout_key is not None else None

    def drop(y, key):
      return self.dropout(y, deterministic=deterministic, rngs=key)

    if self.pre_norm:
      a_BxQxD, cache = self.attn(self.attn_norm(x_BxTxD), spec, positions_BxT, k_attn, cache,
                                 queries_BxQ)
      x_BxQxD = at_rows(x_BxTxD, queries_BxQ) + drop(a_BxQxD, k1)
      x_BxQxD = x_BxQxD + drop(self.mlp(self.mlp_norm(x_BxQxD)), k2)
    else:
      a_BxQxD, cache = self.attn(x_BxTxD, spec, positions_BxT, k_attn, cache, queries_BxQ)
      x_BxQxD = self.attn_norm(at_rows(x_BxTxD, queries_BxQ) + drop(a_BxQxD, k1))
      x_BxQxD = self.mlp_norm(x_BxQxD + drop(self.mlp(x_BxQxD), k2))
    return sharding.constrain(x_BxQxD, ("batch", "seq", "embed")), cache


def _lookup(embed: nnx.Embed, ids_BxT: jax.Array, dtype: str) -> jax.Array:
  """Row lookup from a table gathered whole along D (as FSDP gathers every weight before use):
  a gather keeps its table's D sharding, which GSPMD cannot cheaply turn into batch sharding."""
  table_VxD = sharding.constrain(embed.embedding[...], ("vocab", None))
  return jnp.take(table_VxD, ids_BxT, axis=0).astype(dtype)


class Backbone(nnx.Module):
  """Embeddings, L blocks (scanned or unrolled), final norm: token ids -> hidden states."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.cfg = cfg
    dtypes = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype)
    self.embed = nnx.Embed(cfg.vocab_size, cfg.embed_dim, embedding_init=normal_init(("vocab", "embed")),
                           rngs=rngs, **dtypes)
    if cfg.position == "learned":
      self.pos_embed = nnx.Embed(cfg.max_seq_len, cfg.embed_dim,
                                 embedding_init=normal_init((None, "embed")), rngs=rngs, **dtypes)
    if cfg.type_vocab_size:
      # Zeros, not BERT's N(0, 0.02): a random type-0 row is one vector added to every token,
      # which at jaxlm's CPU scale kept MLM on the unigram plateau (docs/objectives.md); from
      # zeros a model with token types starts as the same model without them.
      self.type_embed = nnx.Embed(cfg.type_vocab_size, cfg.embed_dim,
                                  embedding_init=zeros_init((None, "embed")), rngs=rngs, **dtypes)
    # Post-LN (BERT) normalises the embeddings; pre-LN (GPT-2) normalises the final output, and
    # with embed_norm (RoBERTa-PreLayerNorm) the embeddings too.
    self.norm = layer_norm(cfg, rngs)
    if cfg.norm == "pre" and cfg.embed_norm:
      self.embed_norm = layer_norm(cfg, rngs)
    self.dropout = nnx.Dropout(cfg.dropout)
    if cfg.scan_layers:
      self.blocks = self._stacked_blocks(cfg, rngs)
    else:
      self.blocks = nnx.List([Block(cfg, rngs=rngs) for _ in range(cfg.num_layers)])

  @staticmethod
  def _stacked_blocks(cfg: ModelConfig, rngs: nnx.Rngs) -> Block:
    """One Block whose parameters have a leading L axis (logical name 'layers')."""

    @nnx.split_rngs(splits=cfg.num_layers)
    @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
    def make(rngs: nnx.Rngs) -> Block:
      return Block(cfg, rngs=rngs)

    return make(rngs)

  def __call__(self, tokens_BxT: jax.Array, spec: MaskSpec, positions_BxT: jax.Array | None = None,
               dropout_key: jax.Array | None = None, cache: KVCache | None = None,
               token_types_BxT: jax.Array | None = None, queries_BxQ: jax.Array | None = None):
    """Hidden states h_BxTxD; with a `cache` (generation), (h_BxTxD, the extended cache).
    token_types_BxT: segment A/B ids for models with type embeddings (None: all type 0).
    queries_BxQ: only the hidden states at these positions are wanted (h_BxQxD): the last
    layer computes its queries, attention output, MLP and norms at them alone, as NVIDIA's
    BERT and flash-attention's `last_layer_subset` do (a read-out token, masked positions)."""
    B, T = tokens_BxT.shape
    if positions_BxT is None:
      positions_BxT = jnp.broadcast_to(jnp.arange(T), (B, T))
    key_embed, key_blocks = (jax.random.split(dropout_key) if dropout_key is not None
                             else (None, None))
    x_BxTxD = self.embed_tokens(tokens_BxT, positions_BxT, key_embed, token_types_BxT)
    return self.encode(x_BxTxD, spec, positions_BxT, key_blocks, cache, queries_BxQ)

  def embed_tokens(self, tokens_BxT: jax.Array, positions_BxT: jax.Array,
                   dropout_key: jax.Array | None = None,
                   token_types_BxT: jax.Array | None = None) -> jax.Array:
    cfg = self.cfg
    x_BxTxD = _lookup(self.embed, tokens_BxT, cfg.dtype)
    if cfg.position == "learned":
      x_BxTxD = x_BxTxD + _lookup(self.pos_embed, positions_BxT, cfg.dtype)
    elif cfg.position == "sinusoidal":
      x_BxTxD = x_BxTxD + sinusoidal_BxTxD(positions_BxT, cfg.embed_dim).astype(x_BxTxD.dtype)
    if cfg.type_vocab_size:
      if token_types_BxT is None:  # one segment: every token is type 0
        x_BxTxD = x_BxTxD + self.type_embed.embedding[0].astype(cfg.dtype)
      else:
        x_BxTxD = x_BxTxD + _lookup(self.type_embed, token_types_BxT, cfg.dtype)
    if cfg.norm == "post":
      x_BxTxD = self.norm(x_BxTxD)
    elif cfg.embed_norm:
      x_BxTxD = self.embed_norm(x_BxTxD)
    x_BxTxD = self.dropout(x_BxTxD, deterministic=dropout_key is None, rngs=dropout_key)
    return sharding.constrain(x_BxTxD, ("batch", "seq", "embed"))

  def encode(self, x_BxTxD: jax.Array, spec: MaskSpec, positions_BxT: jax.Array,
             dropout_key: jax.Array | None = None, cache: KVCache | None = None,
             queries_BxQ: jax.Array | None = None):
    """The L blocks (and pre-LN's final norm) over embedded inputs; returns as `__call__`."""
    cfg = self.cfg
    if cache is not None and queries_BxQ is not None:
      raise ValueError("queries_BxQ: not with a cache (generation reads every position)")
    layer_keys = (jax.random.split(dropout_key, cfg.num_layers) if dropout_key is not None
                  else None)
    k_L, v_L = (cache.k, cache.v) if cache is not None else (None, None)

    def apply(block: Block, x_BxTxD: jax.Array, key: jax.Array | None, k, v, queries=None):
      layer_cache = None if cache is None else cache.layer(k, v)
      x_BxTxD, layer_cache = block(x_BxTxD, spec, positions_BxT, key, layer_cache, queries)
      return x_BxTxD, (None if layer_cache is None else (layer_cache.k, layer_cache.v))

    if cfg.remat != "none":
      apply = nnx.remat(apply, policy=REMAT_POLICIES[cfg.remat], prevent_cse=not cfg.scan_layers)

    if cfg.scan_layers:
      graphdef, stacked = nnx.split(self.blocks)

      def body(x_BxTxD, layer):
        state, key, k, v = layer
        return apply(nnx.merge(graphdef, state), x_BxTxD, key, k, v)

      if queries_BxQ is None:
        x_BxTxD, kv = jax.lax.scan(body, x_BxTxD, (stacked, layer_keys, k_L, v_L))
      else:  # the first L - 1 layers scanned, the last on the queries
        L = cfg.num_layers
        keys = (None, None) if layer_keys is None else (layer_keys[:L - 1], layer_keys[L - 1])
        if L > 1:
          first = jax.tree.map(lambda a: a[:L - 1], stacked)
          x_BxTxD, _ = jax.lax.scan(body, x_BxTxD, (first, keys[0], None, None))
        last = nnx.merge(graphdef, jax.tree.map(lambda a: a[L - 1], stacked))
        x_BxTxD, kv = apply(last, x_BxTxD, keys[1], None, None, queries_BxQ)
    else:
      kvs = []
      for i, block in enumerate(self.blocks):
        last = i == len(self.blocks) - 1
        x_BxTxD, layer_kv = apply(block, x_BxTxD, None if layer_keys is None else layer_keys[i],
                                  None if cache is None else k_L[i],
                                  None if cache is None else v_L[i],
                                  queries_BxQ if last else None)
        kvs.append(layer_kv)
      kv = None if cache is None else tuple(jnp.stack(t) for t in zip(*kvs))
    if cfg.norm == "pre":
      x_BxTxD = self.norm(x_BxTxD)
    if cache is None:
      return x_BxTxD
    return x_BxTxD, dataclasses.replace(cache, k=kv[0], v=kv[1])
