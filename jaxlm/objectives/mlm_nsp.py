"""MLM + next-sentence prediction: BERT as published (Devlin et al. 2019).

Rows are sentence pairs `[CLS] A [SEP] B [SEP]` with token types 0 / 1, B the true next segment
or (half the time) a random segment of another document (`jaxlm.data.sentence_pairs`); the masked
tokens are predicted as in MLM, and the pooled [CLS] state says whether B follows A. RoBERTa
(Liu et al. 2019) found dropping NSP does not hurt; `jaxlm compare --config.objectives=mlm,
mlm_nsp` measures that here.

The loss is BERT's: the mean over masked tokens plus the mean over rows. The step divides the
summed gradient by the masked-token count, so the NSP sum is scaled by masked tokens / rows of
the batch it was computed on: exact for a whole batch, and per microbatch under gradient
accumulation (where each microbatch's NSP term is weighted by its share of the masked tokens).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxlm.data.packing import Batch
from jaxlm.objectives import mlm
from jaxlm.objectives.base import Objective
from jaxlm.objectives.losses import loss_sums


def mlm_nsp_sums(model, batch: Batch, key, config, special, dropout_key):
  h_Bx1MxD, targets_BxM, weights_BxM = mlm.masked_hidden(model, batch, key, config, special,
                                                         dropout_key, first=True)
  sums = loss_sums(model.mlm_logits, h_Bx1MxD[:, 1:], targets_BxM, weights_BxM,
                   config.model.loss_chunk)
  logits_Bx2 = model.nsp_logits(h_Bx1MxD)  # from position 0, [CLS]
  labels_B = batch["nsp_labels"]
  rows_B = (batch["segment_ids"][:, 0] > 0).astype(jnp.float32)  # every pair row is real
  nsp_loss_sum = jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits_Bx2, labels_B)
                         * rows_B)
  nsp_count = jnp.sum(rows_B)
  scale = jax.lax.stop_gradient(sums["count"] / jnp.maximum(nsp_count, 1.0))
  return {
    "loss_sum": sums["loss_sum"] + scale * nsp_loss_sum,
    "correct_sum": sums["correct_sum"],
    "count": sums["count"],
    "mlm_loss_sum": sums["loss_sum"],
    "nsp_loss_sum": nsp_loss_sum,
    "nsp_correct_sum": jnp.sum((jnp.argmax(logits_Bx2, axis=-1) == labels_B) * rows_B),
    "nsp_count": nsp_count,
  }


def _head_macs(config) -> float:
  D = config.model.embed_dim
  return mlm.head_macs(config) + (D * D + 2 * D) / config.seq_len  # pooler + classifier, per row


OBJECTIVE = Objective(
  name="mlm_nsp", attention="bidirectional", head="mlm_transform",
  classifier_attention="bidirectional", classifier_readout="first", reports_perplexity=False,
  generates=False, hf_family="bert", loss_sums=mlm_nsp_sums, inference_logits=mlm.mlm_logits,
  head_macs_per_token=_head_macs, rows="sentence_pairs", token_types=2, nsp=True,
  read_fraction=lambda config: min(mlm.read_fraction(config) + 1 / config.seq_len, 1.0))
