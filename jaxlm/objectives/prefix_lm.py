"""Prefix-LM (T5 / UniLM): bidirectional over a random per-row prefix, causal after it; only the
continuation is predicted."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlm.data.packing import Batch
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives.base import Objective
from jaxlm.objectives.losses import loss_sums, next_token_targets


def draw_prefix_len(key: jax.Array, B: int, T: int, config) -> jax.Array:
  """Per-row prefix lengths, uniform in [min_prefix_frac * T, max_prefix_frac * T]."""
  low = max(1, int(config.prefix_lm.min_prefix_frac * T))
  high = max(low + 1, int(config.prefix_lm.max_prefix_frac * T) + 1)
  return jax.random.randint(key, (B,), low, high)


def prefix_lm_sums(model, batch: Batch, key, config, special, dropout_key):
  del special
  tokens_BxT, seg_BxT = batch["tokens"], batch["segment_ids"]
  B, T = tokens_BxT.shape
  targets_BxT, weights_BxT = next_token_targets(tokens_BxT, seg_BxT)
  prefix_len_B = draw_prefix_len(key, B, T, config)
  # Positions inside the prefix see the whole prefix, so only the continuation is predicted:
  # position t is scored when its target t+1 lies at or after the prefix end.
  weights_BxT &= jnp.arange(T)[None, :] >= prefix_len_B[:, None] - 1
  h_BxTxD = model.hidden(tokens_BxT, MaskSpec("prefix", seg_BxT, prefix_len_B),
                         batch["positions"], dropout_key)
  return loss_sums(model.lm_logits, h_BxTxD, targets_BxT, weights_BxT, config.model.loss_chunk)


def prefix_lm_logits(model, tokens_BxT: jax.Array, prefix_len_B: jax.Array,
                     positions_BxK: jax.Array | None = None,
                     segment_ids_BxT: jax.Array | None = None) -> jax.Array:
  spec = MaskSpec("prefix", segment_ids_BxT, prefix_len_B)
  h = model.hidden(tokens_BxT, spec, queries_BxQ=positions_BxK)
  return model.lm_logits(h).astype(jnp.float32)


OBJECTIVE = Objective(
  name="prefix_lm", attention="prefix", head="tied", classifier_attention="bidirectional",
  classifier_readout="first", reports_perplexity=True, generates=True, hf_family=None,
  loss_sums=prefix_lm_sums, inference_logits=prefix_lm_logits,
  head_macs_per_token=lambda config: config.model.embed_dim * config.model.vocab_size,
  likelihood="exact")
