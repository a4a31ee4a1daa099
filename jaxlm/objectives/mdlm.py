"""MDLM, masked diffusion (Sahoo et al. 2024; LLaDA, Nie et al. 2025, trains the same loss): the
MLM network (bidirectional backbone, MLM head) trained on every masking rate, so that its loss
bounds the negative log-likelihood.

Each row draws a rate t ~ U(min_t, 1) (stratified over the batch, MDLM's low-discrepancy
sampler: row i's t lies in the i-th of B equal slices, so each is still uniform); every eligible
token (real, not special) becomes [MASK] with probability t, with no random or kept tokens; the
head predicts the original token at every masked position, and the row's loss is
(1/t) * the sum of those cross-entropies. Summed over rows and divided by the row's eligible
tokens (`count`), it is the continuous-time negative ELBO in nats per token: an upper bound on
-log p(x) / tokens under the model's own generative process (unmask the tokens in a uniformly
random order, each drawn from the head given what is unmasked so far), of which it is the
expected sum of conditional log-losses (Ou et al. 2024; Hoogeboom et al. 2021's any-order
autoregressive models). exp(loss) is logged as `perplexity_bound`; accuracy is over the masked
tokens (`accuracy_count`).

Zero-shot scoring (BLiMP) uses the pseudo-log-likelihood, as for MLM: a Monte-Carlo ELBO per
sentence with a fixed budget of masked rows costs about as much and is noisier at this size; the
ELBO remains the training and held-out metric. The network is MLM's, so it exports as BERT.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlm.data.packing import Batch
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives import mlm
from jaxlm.objectives.base import Objective
from jaxlm.objectives.losses import loss_sums


def draw_t(key: jax.Array, B: int, min_t: float) -> jax.Array:
  """Per-row masking rates, each uniform in [min_t, 1], row i's in the i-th of B equal slices."""
  u_B = (jax.random.uniform(key, (B,)) + jnp.arange(B)) / B
  return min_t + (1.0 - min_t) * u_B


def sums_at(model, batch: Batch, t_B: jax.Array, key, config, special, dropout_key):
  """The objective's sums with the rows' masking rates `t_B` given; `key` draws the masks."""
  tokens_BxT, seg_BxT = batch["tokens"], batch["segment_ids"]
  eligible_BxT = (seg_BxT > 0) & ~jnp.isin(tokens_BxT, jnp.asarray(special.special_ids))
  masked_BxT = eligible_BxT & (jax.random.uniform(key, tokens_BxT.shape) < t_B[:, None])
  inputs_BxT = jnp.where(masked_BxT, special.mask, tokens_BxT)
  h_BxTxD = model.hidden(inputs_BxT, MaskSpec("bidirectional", seg_BxT), batch["positions"],
                         dropout_key, token_types_BxT=batch.get("token_types"))
  # The head runs on all T positions; unmasked ones weigh 0, masked ones 1/t in the loss.
  sums = loss_sums(model.mlm_logits, h_BxTxD, tokens_BxT, masked_BxT, config.model.loss_chunk,
                   loss_weights_BxN=masked_BxT / t_B[:, None])
  return {"loss_sum": sums["loss_sum"], "correct_sum": sums["correct_sum"],
          "count": jnp.sum(eligible_BxT, dtype=jnp.float32), "accuracy_count": sums["count"]}


def mdlm_sums(model, batch: Batch, key, config, special, dropout_key):
  k_t, k_mask = jax.random.split(key)
  t_B = draw_t(k_t, batch["tokens"].shape[0], config.mdlm.min_t)
  return sums_at(model, batch, t_B, k_mask, config, special, dropout_key)


def head_macs(config) -> float:
  D, V = config.model.embed_dim, config.model.vocab_size
  return D * D + D * V  # the MLM head runs on every position


OBJECTIVE = Objective(
  name="mdlm", attention="bidirectional", head="mlm_transform",
  classifier_attention="bidirectional", classifier_readout="first", reports_perplexity=False,
  generates=False, hf_family="bert", loss_sums=mdlm_sums, inference_logits=mlm.mlm_logits,
  head_macs_per_token=head_macs, likelihood="bound", unmasks=True)
