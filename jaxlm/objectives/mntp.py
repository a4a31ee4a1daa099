"""MNTP (masked next-token prediction, GPT-BERT): MLM with the prediction shifted one place left,
the shared code of `mntp` and `hybrid` (Charpentier & Samuel, BabyLM 2024).

Tokens are selected and corrupted as MLM selects them (`config.mlm`: rate, 80/10/10, token /
whole-word / span units), attention is bidirectional, and the selected token at position i is predicted by the output at position i−1
through the tied vocabulary projection, the same head and the same shift as a causal LM's. So one
model can train on both kinds of row with one head: the hybrid makes round(B ·
`config.hybrid.causal_fraction`) rows of every batch causal (next-token prediction at every
position, GPT) and the rest MNTP (GPT-BERT: 1 causal to 15 masked, 1/16). Both kinds of row go
through one `prefix` mask: a prefix of 0 tokens is causal attention, a prefix of T tokens is
bidirectional.

Scoring (BLiMP): the hybrid scores causally, as a GPT does (its causal rows trained exactly that);
MNTP scores by its pseudo-log-likelihood with the shift: each token (with the rest of its word)
masked, read one position earlier, after the token documents open with (`predicts_next`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlm.data.packing import Batch
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives.base import Objective
from jaxlm.objectives.losses import loss_sums, next_token_targets
from jaxlm.objectives.masking import mask_for_mlm


def causal_rows(B: int, config) -> int:
  """How many rows of a batch of B are causal (the first ones; the data order is random)."""
  return round(B * config.hybrid.causal_fraction) if config.objective == "hybrid" else 0


def hybrid_sums(model, batch: Batch, key, config, special, dropout_key):
  tokens_BxT, seg_BxT = batch["tokens"], batch["segment_ids"]
  B, T = tokens_BxT.shape
  n_causal = causal_rows(B, config)
  causal_B = jnp.arange(B) < n_causal
  eligible_BxT = (seg_BxT > 0) & ~jnp.isin(tokens_BxT, jnp.asarray(special.special_ids))
  eligible_BxT &= ~causal_B[:, None]  # causal rows stay uncorrupted
  inputs_BxT, pos_BxM, _, weights_BxM = mask_for_mlm(key, tokens_BxT, eligible_BxT, config,
                                                     special)
  selected_BxT = jnp.zeros((B, T), bool).at[jnp.arange(B)[:, None], pos_BxM].max(
    weights_BxM > 0)
  # Position t predicts token t+1 of its document: always in a causal row, and in an MNTP row
  # when token t+1 was selected.
  targets_BxT, next_BxT = next_token_targets(tokens_BxT, seg_BxT)
  weights_BxT = next_BxT & (causal_B[:, None] | jnp.roll(selected_BxT, -1, axis=1))
  if n_causal:
    spec = MaskSpec("prefix", seg_BxT, jnp.where(causal_B, 0, T))
  else:
    spec = MaskSpec("bidirectional", seg_BxT)
  h_BxTxD = model.hidden(inputs_BxT, spec, batch["positions"], dropout_key)
  loss_weights_BxT = None
  if 0 < n_causal < B and config.hybrid.loss_weighting == "rows":
    loss_weights_BxT = _row_weighted(weights_BxT, causal_B, n_causal / B)
  return loss_sums(model.lm_logits, h_BxTxD, targets_BxT, weights_BxT, config.model.loss_chunk,
                   loss_weights_BxT)


def _row_weighted(weights_BxT: jax.Array, causal_B: jax.Array, share: float) -> jax.Array:
  """Per-token loss weights under which the summed loss over the predicted tokens' count is
  share × (the causal rows' mean token loss) + (1 − share) × (the masked rows' mean): GPT-BERT
  averages each device's mean loss, and `share` of its devices read causal rows."""
  w_BxT = weights_BxT.astype(jnp.float32)
  causal_BxT = causal_B[:, None]
  n_causal = jnp.sum(jnp.where(causal_BxT, w_BxT, 0.0))
  n_masked = jnp.sum(jnp.where(causal_BxT, 0.0, w_BxT))
  total = n_causal + n_masked
  scale_BxT = jnp.where(causal_BxT, share * total / jnp.maximum(n_causal, 1.0),
                        (1.0 - share) * total / jnp.maximum(n_masked, 1.0))
  return w_BxT * scale_BxT


def mntp_logits(model, tokens_BxT: jax.Array, prefix_len_B: jax.Array,
                positions_BxK: jax.Array | None = None,
                segment_ids_BxT: jax.Array | None = None) -> jax.Array:
  """Bidirectional logits through the tied head: the output at position i predicts token i+1."""
  del prefix_len_B
  spec = MaskSpec("bidirectional", segment_ids_BxT)
  h = model.hidden(tokens_BxT, spec, queries_BxQ=positions_BxK)
  return model.lm_logits(h).astype(jnp.float32)


def head_macs(config) -> float:
  return config.model.embed_dim * config.model.vocab_size  # the tied head on every position


OBJECTIVE = Objective(
  name="mntp", attention="bidirectional", head="tied", classifier_attention="bidirectional",
  classifier_readout="first", reports_perplexity=False, generates=False, hf_family=None,
  loss_sums=hybrid_sums, inference_logits=mntp_logits, head_macs_per_token=head_macs,
  predicts_next=True)
