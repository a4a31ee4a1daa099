"""MNTP and the GPT-BERT hybrid: the shift by gradient (a selected token's loss reaches the
output one position before it, and nothing else), the hybrid's causal rows (every next-token
pair, causal attention) and their share of each batch."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.model import SPECIAL, model, packed_batch, tiny_config

from jaxlm import objectives
from jaxlm.config import ConfigError, override
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives.masking import mask_for_mlm
from jaxlm.objectives.mntp import causal_rows, hybrid_sums

B, T = 8, 16


class _Shifted:
  """The model with `delta` added to its final hidden states, so the loss's gradient with
  respect to `delta` says which positions' outputs the loss reads."""

  def __init__(self, lm, delta):
    self.lm, self.delta = lm, delta

  def hidden(self, *args, **kwargs):
    return self.lm.hidden(*args, **kwargs) + self.delta

  def lm_logits(self, h):
    return self.lm.lm_logits(h)


def _read_positions(config, batch, key):
  lm = model(config)
  grad = jax.grad(lambda d: hybrid_sums(_Shifted(lm, d), batch, key, config, SPECIAL,
                                        None)["loss_sum"])(jnp.zeros((B, T, 32)))
  return np.abs(np.asarray(grad)).sum(-1) > 0


def _selected(config, batch, key, n_causal=0):
  tokens, seg = batch["tokens"], batch["segment_ids"]
  eligible = (seg > 0) & ~jnp.isin(tokens, jnp.asarray(SPECIAL.special_ids))
  eligible &= (jnp.arange(B) >= n_causal)[:, None]
  _, pos, _, weights = mask_for_mlm(key, tokens, eligible, config, SPECIAL)
  selected = np.zeros((B, T), bool)
  for b in range(B):
    selected[b, np.asarray(pos[b])[np.asarray(weights[b]) > 0]] = True
  return selected


def _next_pairs(seg):
  return (np.roll(seg, -1, 1) == seg) & (seg > 0) & (np.arange(T) < T - 1)


def test_mntp_predicts_each_selected_token_from_the_position_before_it():
  config = override(tiny_config("mntp"), {"mlm.mask_rate": "0.3"})
  batch = {k: jnp.asarray(v) for k, v in packed_batch(B, T).items()}
  key = jax.random.key(3)
  read = _read_positions(config, batch, key)
  selected = _selected(config, batch, key)
  want = _next_pairs(np.asarray(batch["segment_ids"])) & np.roll(selected, -1, 1)
  np.testing.assert_array_equal(read, want)
  assert want.sum() > B  # the test sees many selected tokens
  # The selected token's own position is never read (unless its successor is selected too).
  assert (read & selected & ~np.roll(selected, -1, 1)).sum() == 0


def test_the_hybrids_causal_rows_read_every_pair_and_see_only_the_past():
  config = override(tiny_config("hybrid"), {"hybrid.causal_fraction": "0.25",
                                            "mlm.mask_rate": "0.3"})
  assert causal_rows(B, config) == 2
  batch = {k: jnp.asarray(v) for k, v in packed_batch(B, T).items()}
  key = jax.random.key(5)
  read = _read_positions(config, batch, key)
  pairs = _next_pairs(np.asarray(batch["segment_ids"]))
  np.testing.assert_array_equal(read[:2], pairs[:2])  # causal rows: every next-token pair
  selected = _selected(config, batch, key, n_causal=2)
  np.testing.assert_array_equal(read[2:], (pairs & np.roll(selected, -1, 1))[2:])
  # Causal rows are uncorrupted and causal: the loss at position t does not depend on t+1's
  # embedding there, while a masked row's output at t does.
  lm = model(config)
  x = lm.backbone.embed_tokens(batch["tokens"], batch["positions"])

  spec = MaskSpec("prefix", batch["segment_ids"], jnp.where(jnp.arange(B) < 2, 0, T))
  w = jax.random.normal(jax.random.key(0), (32,))  # a plain sum of a normalised vector is flat

  def out_at(row, t):
    return lambda x: (lm.backbone.encode(x, spec, batch["positions"])[row, t] * w).sum()

  g_causal = np.abs(np.asarray(jax.grad(out_at(0, 3))(x)[0])).sum(-1)
  g_masked = np.abs(np.asarray(jax.grad(out_at(4, 3))(x)[4])).sum(-1)
  assert g_causal[4:].sum() == 0 and g_masked[4] > 0


@pytest.mark.parametrize("fraction, B_, causal", [(0.0625, 16, 1), (0.0625, 32, 2),
                                                   (0.5, 8, 4), (1.0, 8, 8), (0.0, 8, 0)])
def test_the_causal_share_is_exact_in_every_batch(fraction, B_, causal):
  config = override(tiny_config("hybrid"), {"hybrid.causal_fraction": str(fraction)})
  assert causal_rows(B_, config) == causal
  # so over N steps exactly N * causal rows of N * B_ were causal
  assert causal_rows(B_, dataclasses.replace(config, objective="mntp")) == 0


def test_a_causal_fraction_outside_0_1_is_one_line():
  with pytest.raises(ConfigError, match=r"config.hybrid.causal_fraction=1.5: must be in \[0, 1\]"):
    override(tiny_config("hybrid"), {"hybrid.causal_fraction": "1.5"}).validate()


def test_the_hybrid_scores_like_a_causal_lm_and_mntp_like_a_masked_one():
  assert objectives.get("hybrid").generates and not objectives.get("mntp").generates
  assert objectives.get("mntp").predicts_next and not objectives.get("mlm").predicts_next


@pytest.mark.parametrize("weighting", ["rows", "tokens"])
def test_the_hybrid_weights_its_two_kinds_of_row_as_configured(weighting, monkeypatch):
  """rows (GPT-BERT's default): loss = f × causal rows' mean token loss + (1 − f) × masked rows'
  mean, f the causal share of rows; tokens: the mean over every predicted token. Checked against
  the per-token cross-entropies computed by hand from the logits the objective reads."""
  config = override(tiny_config("hybrid"), {"hybrid.causal_fraction": "0.25",
                                            "mlm.mask_rate": "0.3",
                                            "hybrid.loss_weighting": weighting})
  batch = {k: jnp.asarray(v) for k, v in packed_batch(B, T).items()}
  lm = model(config)
  seen = {}
  real_loss_sums = hybrid_sums.__globals__["loss_sums"]

  def capture(logits_fn, h, targets, weights, chunk, loss_weights=None):
    seen.update(logits=logits_fn(h), targets=targets, weights=weights)
    return real_loss_sums(logits_fn, h, targets, weights, chunk, loss_weights)

  monkeypatch.setitem(hybrid_sums.__globals__, "loss_sums", capture)
  sums = hybrid_sums(lm, batch, jax.random.key(2), config, SPECIAL, None)
  logits = np.asarray(seen["logits"], np.float64)
  targets, weights = np.asarray(seen["targets"]), np.asarray(seen["weights"]) > 0
  ce = (np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
        - np.take_along_axis(logits, targets[..., None], -1)[..., 0])
  causal = (np.arange(B) < 2)[:, None] & weights
  masked = (np.arange(B) >= 2)[:, None] & weights
  assert causal.sum() / 2 > 2 * masked.sum() / 6 > 0  # the kinds differ in tokens per row
  assert float(sums["count"]) == weights.sum()
  want = (0.25 * ce[causal].mean() + 0.75 * ce[masked].mean() if weighting == "rows"
          else ce[weights].mean())
  np.testing.assert_allclose(float(sums["loss_sum"]) / float(sums["count"]), want, rtol=1e-5)


def test_a_loss_weighting_outside_rows_tokens_is_one_line():
  with pytest.raises(ConfigError, match=r"config.hybrid.loss_weighting='row'; allowed: rows, "):
    override(tiny_config("hybrid"), {"hybrid.loss_weighting": "row"}).validate()
