"""Attention with dropout on the probabilities, as BERT and GPT-2 trained.

No fused kernel drops probabilities, so training with `model.attention_dropout > 0` runs this
explicit form; evaluation and inference keep the configured kernel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlm.model.masks import MaskSpec


def dropout_attention(q_BxTxHxK: jax.Array, k_BxTxHxK: jax.Array, v_BxTxHxK: jax.Array,
                      spec: MaskSpec, rate: float, key: jax.Array) -> jax.Array:
  """Attention with dropout on the probabilities, as BERT and GPT-2 train. No fused kernel
  drops probabilities, so this is the explicit form: softmax in float32 over the masked scores,
  each probability kept with chance 1 - rate and scaled by 1 / (1 - rate), then the values."""
  T, K = q_BxTxHxK.shape[1], q_BxTxHxK.shape[-1]
  scores_BxHxTxT = jnp.einsum("bthk,bshk->bhts", q_BxTxHxK, k_BxTxHxK,
                              preferred_element_type=jnp.float32) / jnp.sqrt(jnp.float32(K))
  scores_BxHxTxT = jnp.where(spec.dense(T), scores_BxHxTxT, jnp.finfo(jnp.float32).min)
  probs_BxHxTxT = jax.nn.softmax(scores_BxHxTxT, axis=-1)
  keep_BxHxTxT = jax.random.bernoulli(key, 1.0 - rate, probs_BxHxTxT.shape)
  probs_BxHxTxT = jnp.where(keep_BxHxTxT, probs_BxHxTxT / (1.0 - rate), 0.0)
  return jnp.einsum("bhts,bshk->bthk", probs_BxHxTxT.astype(v_BxTxHxK.dtype), v_BxTxHxK)
