"""MLM (BERT): bidirectional attention; a random subset of tokens is corrupted on the device and
predicted by the MLM head, which runs on the M selected positions only."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxlm.data.packing import Batch
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives.base import Objective
from jaxlm.objectives.losses import at_positions, loss_sums


def mask_for_mlm(key: jax.Array, tokens_BxT: jax.Array, eligible_BxT: jax.Array, config,
                 special):
  """BERT masking: pick round(rate * eligible) positions per row, then 80/10/10 replacement.

  Returns (inputs_BxT, positions_BxM, targets_BxM, weights_BxM): M = ceil(rate * T) is a static
  upper bound, so the head runs on M positions, not T; rows with fewer picks get weight 0 slots.
  """
  rate = config.mlm.mask_rate
  B, T = tokens_BxT.shape
  M = max(1, math.ceil(rate * T))
  k_pick, k_action, k_random = jax.random.split(key, 3)
  # Top-M of uniform scores over eligible positions is a uniform sample without replacement.
  scores_BxT = jnp.where(eligible_BxT, jax.random.uniform(k_pick, (B, T)), -1.0)
  _, positions_BxM = jax.lax.top_k(scores_BxT, M)
  num_B = jnp.round(rate * eligible_BxT.sum(axis=1)).astype(jnp.int32)
  weights_BxM = jnp.arange(M)[None, :] < num_B[:, None]
  targets_BxM = jnp.take_along_axis(tokens_BxT, positions_BxM, axis=1)

  u_BxM = jax.random.uniform(k_action, (B, M))
  random_BxM = jax.random.randint(k_random, (B, M), 0, special.vocab_in_use)
  random_is_special_BxM = jnp.isin(random_BxM, jnp.asarray(special.special_ids))
  p_mask, p_random = config.mlm.mask_token_prob, config.mlm.random_token_prob
  replaced_BxM = jnp.where(
    u_BxM < p_mask, special.mask,
    jnp.where((u_BxM < p_mask + p_random) & ~random_is_special_BxM, random_BxM, targets_BxM))
  replaced_BxM = jnp.where(weights_BxM, replaced_BxM, targets_BxM)
  inputs_BxT = tokens_BxT.at[jnp.arange(B)[:, None], positions_BxM].set(replaced_BxM)
  return inputs_BxT, positions_BxM, targets_BxM, weights_BxM


def mlm_sums(model, batch: Batch, key, config, special, dropout_key):
  tokens_BxT, seg_BxT = batch["tokens"], batch["segment_ids"]
  eligible_BxT = (seg_BxT > 0) & ~jnp.isin(tokens_BxT, jnp.asarray(special.special_ids))
  inputs_BxT, pos_BxM, targets_BxM, weights_BxM = mask_for_mlm(
    key, tokens_BxT, eligible_BxT, config, special)
  h_BxTxD = model.hidden(inputs_BxT, MaskSpec("bidirectional", seg_BxT), batch["positions"],
                         dropout_key)
  h_BxMxD = jnp.take_along_axis(h_BxTxD, pos_BxM[..., None], axis=1)
  return loss_sums(model.mlm_logits, h_BxMxD, targets_BxM, weights_BxM, config.model.loss_chunk)


def mlm_logits(model, tokens_BxT: jax.Array, prefix_len_B: jax.Array,
               positions_BxK: jax.Array | None = None) -> jax.Array:
  del prefix_len_B
  h = at_positions(model.hidden(tokens_BxT, MaskSpec("bidirectional")), positions_BxK)
  return model.mlm_logits(h).astype(jnp.float32)


def _head_macs(config) -> float:
  D, V = config.model.embed_dim, config.model.vocab_size
  return config.mlm.mask_rate * (D * D + D * V)  # the head runs on the masked positions only


OBJECTIVE = Objective(
  name="mlm", attention="bidirectional", head="mlm_transform", classifier_attention="bidirectional",
  classifier_readout="first", reports_perplexity=False, generates=False, hf_family="bert",
  loss_sums=mlm_sums, inference_logits=mlm_logits, head_macs_per_token=_head_macs)
