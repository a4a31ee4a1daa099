"""Which tokens MLM predicts, drawn on the device inside the step: single tokens (BERT), whole
words (BERT's whole-word masking) or spans of whole words with geometric lengths (SpanBERT).

All three pick *units* (a token, a word, a span) in a random order, taking each that still fits
the budget round(mask_rate * eligible tokens) and skipping those that do not (BERT's
create_masked_lm_predictions), so a row's masked count is exactly the budget for token masking
and at most the budget for the other two; a unit is always taken whole. The head runs on M = ceil(mask_rate * T) gathered
positions (a static bound), the unused slots weighted 0.

References: Devlin et al. 2019 (BERT; 80/10/10 replacement, and the whole-word masking of the
2019 BERT release: every WordPiece of a selected word is masked, the replacement still drawn per
token), Joshi et al. 2020 (SpanBERT: span lengths in words ~ Geometric(p = 0.2) clipped at 10,
replacement drawn once per span).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxlm.data.special_tokens import ENDS_WORD, STARTS_WORD


def word_starts(tokens_BxT: jax.Array, eligible_BxT: jax.Array, word_flags: bytes) -> jax.Array:
  """[B, T] bool: the eligible token begins a word: its own flag says so, the token before it
  ends in whitespace, or the token before it is not eligible (a special token, padding, the row
  start). With no flags (`b""`) every token is a word."""
  if not word_flags:
    return eligible_BxT
  flags_V = jnp.asarray(np.frombuffer(word_flags, np.uint8))
  flags_BxT = flags_V[jnp.clip(tokens_BxT, 0, flags_V.shape[0] - 1)]
  prev_flags_BxT = jnp.pad(flags_BxT, ((0, 0), (1, 0)))[:, :-1]
  prev_eligible_BxT = jnp.pad(eligible_BxT, ((0, 0), (1, 0)))[:, :-1]
  starts_BxT = ((flags_BxT & STARTS_WORD) > 0) | ((prev_flags_BxT & ENDS_WORD) > 0)
  return eligible_BxT & (starts_BxT | ~prev_eligible_BxT)


def _unit_ids(starts_BxT: jax.Array) -> jax.Array:
  """Index (0..) of the unit each token belongs to: a running count of unit starts."""
  return jnp.maximum(jnp.cumsum(starts_BxT, axis=1) - 1, 0)


def span_starts(key: jax.Array, word_starts_BxT: jax.Array, p: float, max_span: int) -> jax.Array:
  """Cuts each row's words into spans whose lengths in words follow SpanBERT's distribution,
  Geometric(p) truncated to [1, max_span] (mean 3.8 words at p = 0.2, max_span = 10), drawn by
  inverting its CDF: [B, T] bool, the token begins a span."""
  B, T = word_starts_BxT.shape
  u_BxT = jax.random.uniform(key, (B, T))
  if p < 1:
    tail = 1.0 - (1.0 - p) ** max_span  # P(length <= max_span) before truncation
    lengths_BxT = 1 + jnp.floor(jnp.log1p(-u_BxT * tail) / math.log1p(-p))
    lengths_BxT = jnp.clip(lengths_BxT, 1, max_span).astype(jnp.int32)
  else:
    lengths_BxT = jnp.ones((B, T), jnp.int32)
  first_word_BxT = jnp.cumsum(lengths_BxT, axis=1) - lengths_BxT  # the word each span starts at
  word_BxT = _unit_ids(word_starts_BxT)
  # The span holding each word (first_word is increasing), and whether the word opens it.
  span_BxT = jax.vmap(lambda firsts, w: jnp.searchsorted(firsts, w, side="right") - 1)(
    first_word_BxT, word_BxT)
  is_first_BxT = jnp.take_along_axis(first_word_BxT, span_BxT, axis=1) == word_BxT
  return word_starts_BxT & is_first_BxT


def select(key: jax.Array, starts_BxT: jax.Array, eligible_BxT: jax.Array, rate: float):
  """Whole units, greedily in random order, as BERT's create_masked_lm_predictions: a unit is
  taken when it still fits the budget round(rate * eligible tokens), and skipped otherwise.

  Returns (selected_BxT, unit_BxT): which tokens are picked, and each token's unit index."""
  B, T = starts_BxT.shape
  unit_BxT = _unit_ids(starts_BxT)
  budget_B = jnp.round(rate * eligible_BxT.sum(axis=1)).astype(jnp.int32)
  # Unit u's length in eligible tokens (units are indexed 0..T-1; unused indices have length 0).
  length_BxU = jax.vmap(lambda e, u: jax.ops.segment_sum(e, u, num_segments=T))(
    eligible_BxT.astype(jnp.int32), unit_BxT)
  score_BxU = jnp.where(length_BxU > 0, jax.random.uniform(key, (B, T)), 2.0)
  order_BxU = jnp.argsort(score_BxU, axis=1)  # a random order of the real units

  def take(used_B, length_B):
    fits_B = (length_B > 0) & (used_B + length_B <= budget_B)
    return used_B + jnp.where(fits_B, length_B, 0), fits_B

  _, taken_UxB = jax.lax.scan(take, jnp.zeros((B,), jnp.int32),
                              jnp.take_along_axis(length_BxU, order_BxU, axis=1).T)
  taken_BxU = jnp.zeros((B, T), bool).at[jnp.arange(B)[:, None], order_BxU].set(taken_UxB.T)
  return eligible_BxT & jnp.take_along_axis(taken_BxU, unit_BxT, axis=1), unit_BxT


def _token_positions(key, eligible_BxT: jax.Array, rate: float, M: int):
  """Token masking: round(rate * eligible) positions per row, uniformly without replacement (the
  top M of uniform scores over eligible positions)."""
  B, T = eligible_BxT.shape
  scores_BxT = jnp.where(eligible_BxT, jax.random.uniform(key, (B, T)), -1.0)
  _, positions_BxM = jax.lax.top_k(scores_BxT, M)
  num_B = jnp.round(rate * eligible_BxT.sum(axis=1)).astype(jnp.int32)
  return positions_BxM, jnp.arange(M)[None, :] < num_B[:, None]


def _unit_positions(key, tokens_BxT, eligible_BxT, config, special, M: int):
  """Whole-word or span masking: the positions of the selected units' tokens, and each token's
  unit (so a span can share one replacement draw)."""
  mlm = config.mlm
  B, T = tokens_BxT.shape
  k_span, k_pick, k_order = jax.random.split(key, 3)
  starts_BxT = word_starts(tokens_BxT, eligible_BxT, special.word_flags)
  if mlm.masking == "span":
    starts_BxT = span_starts(k_span, starts_BxT, mlm.span_p, mlm.max_span)
  selected_BxT, unit_BxT = select(k_pick, starts_BxT, eligible_BxT, mlm.mask_rate)
  # The M slots: the selected positions first (in random order), then unused ones.
  order_BxT = jnp.where(selected_BxT, 1.0 + jax.random.uniform(k_order, (B, T)), 0.0)
  _, positions_BxM = jax.lax.top_k(order_BxT, M)
  return positions_BxM, jnp.arange(M)[None, :] < selected_BxT.sum(axis=1)[:, None], unit_BxT


def mask_for_mlm(key: jax.Array, tokens_BxT: jax.Array, eligible_BxT: jax.Array, config,
                 special):
  """Picks the predicted tokens (`config.mlm.masking`: token, whole_word or span units) and
  corrupts them 80/10/10 (`mask_token_prob` / `random_token_prob` / unchanged).

  Returns (inputs_BxT, positions_BxM, targets_BxM, weights_BxM): M = ceil(rate * T) is a static
  upper bound, so the head runs on M positions, not T; rows with fewer picks get weight 0 slots.
  """
  mlm = config.mlm
  B, T = tokens_BxT.shape
  M = max(1, math.ceil(mlm.mask_rate * T))
  k_pick, k_action, k_random = jax.random.split(key, 3)
  if mlm.masking == "token":
    positions_BxM, weights_BxM = _token_positions(k_pick, eligible_BxT, mlm.mask_rate, M)
    u_BxM = jax.random.uniform(k_action, (B, M))
  else:
    positions_BxM, weights_BxM, unit_BxT = _unit_positions(
      k_pick, tokens_BxT, eligible_BxT, config, special, M)
    # Per token (whole-word BERT) or once per span (SpanBERT).
    u_BxT = jax.random.uniform(k_action, (B, T))
    if mlm.masking == "span":
      u_BxT = jnp.take_along_axis(u_BxT, unit_BxT, axis=1)
    u_BxM = jnp.take_along_axis(u_BxT, positions_BxM, axis=1)
  targets_BxM = jnp.take_along_axis(tokens_BxT, positions_BxM, axis=1)
  random_BxM = jax.random.randint(k_random, (B, M), 0, special.vocab_in_use)
  random_is_special_BxM = jnp.isin(random_BxM, jnp.asarray(special.special_ids))
  p_mask, p_random = mlm.mask_token_prob, mlm.random_token_prob
  replaced_BxM = jnp.where(
    u_BxM < p_mask, special.mask,
    jnp.where((u_BxM < p_mask + p_random) & ~random_is_special_BxM, random_BxM, targets_BxM))
  replaced_BxM = jnp.where(weights_BxM, replaced_BxM, targets_BxM)
  inputs_BxT = tokens_BxT.at[jnp.arange(B)[:, None], positions_BxM].set(replaced_BxM)
  return inputs_BxT, positions_BxM, targets_BxM, weights_BxM
