"""CLM (GPT): causal attention, every position predicts the next token of its document."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlm.data.packing import Batch
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives.base import Objective
from jaxlm.objectives.losses import loss_sums, next_token_targets


def clm_sums(model, batch: Batch, key, config, special, dropout_key):
  del key, special  # nothing is drawn: every position predicts its successor
  seg_BxT = batch["segment_ids"]
  targets_BxT, weights_BxT = next_token_targets(batch["tokens"], seg_BxT)
  h_BxTxD = model.hidden(batch["tokens"], MaskSpec("causal", seg_BxT), batch["positions"],
                         dropout_key)
  return loss_sums(model.lm_logits, h_BxTxD, targets_BxT, weights_BxT, config.model.loss_chunk)


def clm_logits(model, tokens_BxT: jax.Array, prefix_len_B: jax.Array,
               positions_BxK: jax.Array | None = None,
               segment_ids_BxT: jax.Array | None = None) -> jax.Array:
  del prefix_len_B
  spec = MaskSpec("causal", segment_ids_BxT)
  h = model.hidden(tokens_BxT, spec, queries_BxQ=positions_BxK)
  return model.lm_logits(h).astype(jnp.float32)


OBJECTIVE = Objective(
  name="clm", attention="causal", head="tied", classifier_attention="causal",
  classifier_readout="last", reports_perplexity=True, generates=True, hf_family="gpt2",
  loss_sums=clm_sums, inference_logits=clm_logits,
  head_macs_per_token=lambda config: config.model.embed_dim * config.model.vocab_size,
  likelihood="exact")
