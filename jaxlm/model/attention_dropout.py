"""Attention with dropout on the probabilities, as BERT and GPT-2 trained.

No fused kernel drops probabilities, so training with `model.attention_dropout > 0` runs this
explicit form; evaluation and inference keep the configured kernel.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlm.model.masks import MaskSpec


def dropout_attention(q_BxQxHxK: jax.Array, k_BxTxHxK: jax.Array, v_BxTxHxK: jax.Array,
                      spec: MaskSpec, rate: float, key: jax.Array,
                      queries_BxQ: jax.Array | None = None) -> jax.Array:
  """Attention with dropout on the probabilities, as BERT and GPT-2 train. No fused kernel
  drops probabilities, so this is the explicit form: softmax in float32 over the masked scores,
  each probability kept with chance 1 - rate and scaled by 1 / (1 - rate), then the values.
  `queries_BxQ`: the positions of the Q queries when they are not all T (`MaskSpec.rows`)."""
  T, K = k_BxTxHxK.shape[1], q_BxQxHxK.shape[-1]
  mask_Bx1xQxT = spec.dense(T) if queries_BxQ is None else spec.rows(queries_BxQ, T)
  scores_BxHxQxT = jnp.einsum("bthk,bshk->bhts", q_BxQxHxK, k_BxTxHxK,
                              preferred_element_type=jnp.float32) / jnp.sqrt(jnp.float32(K))
  scores_BxHxQxT = jnp.where(mask_Bx1xQxT, scores_BxHxQxT, jnp.finfo(jnp.float32).min)
  probs_BxHxQxT = jax.nn.softmax(scores_BxHxQxT, axis=-1)
  keep_BxHxQxT = jax.random.bernoulli(key, 1.0 - rate, probs_BxHxQxT.shape)
  probs_BxHxQxT = jnp.where(keep_BxHxQxT, probs_BxHxQxT / (1.0 - rate), 0.0)
  return jnp.einsum("bhts,bshk->bthk", probs_BxHxQxT.astype(v_BxTxHxK.dtype), v_BxTxHxK)
