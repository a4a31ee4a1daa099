"""The three pre-training objectives: the mask each one attends with, its targets and its loss.

Everything here runs inside the jitted step. MLM masking is drawn on the device from the step's
RNG, so the input pipeline is identical for every objective and a resumed run masks exactly as an
uninterrupted one would. Losses come back as sums with their token counts, so gradient
accumulation and evaluation average over predicted tokens exactly.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import optax

from jaxlm.attention import MaskSpec
from jaxlm.config import Config
from jaxlm.model import LanguageModel


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
  """Token ids the objectives must know; hashable, so it can be a static jit argument."""

  pad: int
  mask: int
  special_ids: tuple[int, ...]  # never masked, never drawn as random replacements
  vocab_in_use: int  # ids >= this are padding rows of the embedding table


def mask_for_mlm(key: jax.Array, tokens_BxT: jax.Array, eligible_BxT: jax.Array, config: Config,
                 special: SpecialTokens):
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


def draw_prefix_len(key: jax.Array, B: int, T: int, config: Config) -> jax.Array:
  low = max(1, int(config.prefix_lm.min_prefix_frac * T))
  high = max(low + 1, int(config.prefix_lm.max_prefix_frac * T) + 1)
  return jax.random.randint(key, (B,), low, high)


def _cross_entropy_sums(logits_BxNxV: jax.Array, targets_BxN: jax.Array, weights_BxN: jax.Array):
  logits_BxNxV = logits_BxNxV.astype(jnp.float32)
  losses_BxN = optax.softmax_cross_entropy_with_integer_labels(logits_BxNxV, targets_BxN)
  weights_BxN = weights_BxN.astype(jnp.float32)
  correct_BxN = (jnp.argmax(logits_BxNxV, axis=-1) == targets_BxN).astype(jnp.float32)
  return {
    "loss_sum": jnp.sum(losses_BxN * weights_BxN),
    "correct_sum": jnp.sum(correct_BxN * weights_BxN),
    "count": jnp.sum(weights_BxN),
  }


def _loss_sums(logits_fn, h_BxNxD: jax.Array, targets_BxN: jax.Array, weights_BxN: jax.Array,
               chunk: int) -> dict[str, jax.Array]:
  """`_cross_entropy_sums(logits_fn(h))`, or, with `chunk`, the same sums over N in chunks of
  `chunk` positions: a scan whose body is rematerialised, so each chunk's B x chunk x V logits
  are made, reduced and dropped, and remade in the backward pass."""
  N = h_BxNxD.shape[1]
  if not chunk or chunk >= N:
    return _cross_entropy_sums(logits_fn(h_BxNxD), targets_BxN, weights_BxN)
  pad = -N % chunk  # padded positions carry weight 0
  h_BxNxD = jnp.pad(h_BxNxD, ((0, 0), (0, pad), (0, 0)))
  targets_BxN, weights_BxN = (jnp.pad(x, ((0, 0), (0, pad))) for x in (targets_BxN, weights_BxN))

  def chunks(x):  # B x N x ... -> C x B x chunk x ...
    return jnp.moveaxis(x.reshape(x.shape[0], -1, chunk, *x.shape[2:]), 1, 0)

  @jax.checkpoint
  def add_chunk(total, chunk_xs):
    sums = _cross_entropy_sums(logits_fn(chunk_xs[0]), chunk_xs[1], chunk_xs[2])
    return jax.tree.map(jnp.add, total, sums), None

  zeros = {k: jnp.zeros((), jnp.float32) for k in ("loss_sum", "correct_sum", "count")}
  total, _ = jax.lax.scan(add_chunk, zeros,
                          (chunks(h_BxNxD), chunks(targets_BxN), chunks(weights_BxN)))
  return total


def objective_sums(model: LanguageModel, batch: dict[str, jax.Array], key: jax.Array,
                   config: Config, special: SpecialTokens, dropout: bool) -> dict[str, jax.Array]:
  """Loss, correct predictions and predicted-token count, summed over the batch.

  batch: tokens_BxT, segment_ids_BxT (0 = padding; a new id per packed document), positions_BxT.
  """
  tokens_BxT, seg_BxT = batch["tokens"], batch["segment_ids"]
  positions_BxT = batch["positions"]
  B, T = tokens_BxT.shape
  k_objective, k_dropout = jax.random.split(key)
  drops = config.model.dropout > 0 or config.model.attention_dropout > 0
  dropout_key = k_dropout if dropout and drops else None

  if config.objective == "mlm":
    eligible_BxT = (seg_BxT > 0) & ~jnp.isin(tokens_BxT, jnp.asarray(special.special_ids))
    inputs_BxT, pos_BxM, targets_BxM, weights_BxM = mask_for_mlm(
      k_objective, tokens_BxT, eligible_BxT, config, special)
    h_BxTxD = model.hidden(inputs_BxT, MaskSpec("bidirectional", seg_BxT), positions_BxT,
                           dropout_key)
    h_BxMxD = jnp.take_along_axis(h_BxTxD, pos_BxM[..., None], axis=1)
    return _loss_sums(model.mlm_logits, h_BxMxD, targets_BxM, weights_BxM,
                      config.model.loss_chunk)

  # CLM and prefix-LM: position t predicts token t+1 of the same document.
  targets_BxT = jnp.roll(tokens_BxT, -1, axis=1)
  weights_BxT = (jnp.roll(seg_BxT, -1, axis=1) == seg_BxT) & (seg_BxT > 0)
  weights_BxT = weights_BxT.at[:, -1].set(False)
  if config.objective == "clm":
    spec = MaskSpec("causal", seg_BxT)
  else:
    prefix_len_B = draw_prefix_len(k_objective, B, T, config)
    spec = MaskSpec("prefix", seg_BxT, prefix_len_B)
    # Positions inside the prefix see the whole prefix, so only the continuation is predicted:
    # position t is scored when its target t+1 lies at or after the prefix end.
    weights_BxT &= jnp.arange(T)[None, :] >= prefix_len_B[:, None] - 1
  h_BxTxD = model.hidden(tokens_BxT, spec, positions_BxT, dropout_key)
  return _loss_sums(model.lm_logits, h_BxTxD, targets_BxT, weights_BxT, config.model.loss_chunk)


def summarize(sums: dict[str, jax.Array], objective: str) -> dict[str, jax.Array]:
  """Per-objective metrics from summed counts."""
  count = jnp.maximum(sums["count"], 1.0)
  loss = sums["loss_sum"] / count
  metrics = {"loss": loss, "accuracy": sums["correct_sum"] / count,
             "predicted_tokens": sums["count"]}
  if objective != "mlm":
    metrics["perplexity"] = jnp.exp(loss)
  return metrics
