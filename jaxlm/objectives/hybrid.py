"""GPT-BERT's causal + masked hybrid (Charpentier & Samuel, BabyLM 2024): one model, one tied
head, round(B · `config.hybrid.causal_fraction`) causal rows per batch (GPT: 1 in 16) and masked
next-token rows for the rest (`mntp.py`). It scores BLiMP causally, as a GPT does: its causal
rows trained exactly that."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlm.model.masks import MaskSpec
from jaxlm.objectives.base import Objective
from jaxlm.objectives.losses import at_positions
from jaxlm.objectives.mntp import head_macs, hybrid_sums


def hybrid_logits(model, tokens_BxT: jax.Array, prefix_len_B: jax.Array,
                  positions_BxK: jax.Array | None = None) -> jax.Array:
  """Causal next-token logits, as the hybrid's causal rows trained them."""
  del prefix_len_B
  h = at_positions(model.hidden(tokens_BxT, MaskSpec("causal")), positions_BxK)
  return model.lm_logits(h).astype(jnp.float32)


OBJECTIVE = Objective(
  name="hybrid", attention="prefix", head="tied", classifier_attention="bidirectional",
  classifier_readout="first", reports_perplexity=False, generates=True, hf_family=None,
  loss_sums=hybrid_sums, inference_logits=hybrid_logits, head_macs_per_token=head_macs)
