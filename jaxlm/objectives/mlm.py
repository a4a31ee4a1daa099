"""MLM (BERT): bidirectional attention; a random subset of tokens is corrupted on the device
(`masking.py`: single tokens, whole words or spans) and predicted by the MLM head, which runs on
the M selected positions only, as does the backbone's last layer (`Backbone`'s queries)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxlm.data.packing import Batch
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives.base import Objective
from jaxlm.objectives.losses import loss_sums
from jaxlm.objectives.masking import mask_for_mlm  # noqa: F401 - part of this module's API


def masked_hidden(model, batch: Batch, key, config, special, dropout_key, first: bool = False):
  """Masks the batch, runs the bidirectional backbone (with the rows' token types, if any) and
  returns (h_BxMxD, targets_BxM, weights_BxM): the hidden states at the M selected positions,
  where the last layer runs alone (`Backbone`'s queries). `first`: position 0 ([CLS]) is read
  too, as h_BxMxD[:, 0] before the M."""
  tokens_BxT, seg_BxT = batch["tokens"], batch["segment_ids"]
  eligible_BxT = (seg_BxT > 0) & ~jnp.isin(tokens_BxT, jnp.asarray(special.special_ids))
  inputs_BxT, pos_BxM, targets_BxM, weights_BxM = mask_for_mlm(
    key, tokens_BxT, eligible_BxT, config, special)
  if first:
    pos_BxM = jnp.concatenate([jnp.zeros_like(pos_BxM[:, :1]), pos_BxM], axis=1)
  h_BxMxD = model.hidden(inputs_BxT, MaskSpec("bidirectional", seg_BxT), batch["positions"],
                         dropout_key, token_types_BxT=batch.get("token_types"),
                         queries_BxQ=pos_BxM)
  return h_BxMxD, targets_BxM, weights_BxM


def mlm_sums(model, batch: Batch, key, config, special, dropout_key):
  h_BxMxD, targets_BxM, weights_BxM = masked_hidden(model, batch, key, config, special,
                                                    dropout_key)
  return loss_sums(model.mlm_logits, h_BxMxD, targets_BxM, weights_BxM, config.model.loss_chunk)


def mlm_logits(model, tokens_BxT: jax.Array, prefix_len_B: jax.Array,
               positions_BxK: jax.Array | None = None,
               segment_ids_BxT: jax.Array | None = None) -> jax.Array:
  del prefix_len_B
  spec = MaskSpec("bidirectional", segment_ids_BxT)
  h = model.hidden(tokens_BxT, spec, queries_BxQ=positions_BxK)
  return model.mlm_logits(h).astype(jnp.float32)


def head_macs(config) -> float:
  D, V = config.model.embed_dim, config.model.vocab_size
  return config.mlm.mask_rate * (D * D + D * V)  # the head runs on the masked positions only


def read_fraction(config) -> float:
  """The last layer's share of positions: the M = ceil(mask_rate * T) masked slots."""
  return min(math.ceil(config.mlm.mask_rate * config.seq_len) / config.seq_len, 1.0)


OBJECTIVE = Objective(
  name="mlm", attention="bidirectional", head="mlm_transform", classifier_attention="bidirectional",
  classifier_readout="first", reports_perplexity=False, generates=False, hf_family="bert",
  loss_sums=mlm_sums, inference_logits=mlm_logits, head_macs_per_token=head_macs,
  read_fraction=read_fraction)
