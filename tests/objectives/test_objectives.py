"""MLM masking statistics, objective targets, schedules, weight decay and FLOP counts."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.model import SPECIAL, packed_batch, tiny_config

from jaxlm.config import Config, ModelConfig, OptimizerConfig, replace_at
from jaxlm.objectives import objective_sums
from jaxlm.objectives.build import abstract_model, build_model
from jaxlm.objectives.mlm import mask_for_mlm
from jaxlm.objectives.prefix_lm import draw_prefix_len
from jaxlm.train.flops import training_flops_per_token
from jaxlm.train.optim import decay_mask, schedule


def test_mlm_masking_statistics():
  cfg = tiny_config("mlm")
  B, T = 512, 128
  rng = np.random.default_rng(0)
  tokens = rng.integers(5, 256, (B, T)).astype(np.int32)
  tokens[:, 0] = 2  # a [CLS]-like special at every row start
  tokens[:, 50] = 3  # and a [SEP] inside
  seg = np.ones((B, T), np.int32)
  seg[:, -20:] = 0  # padding
  tokens[:, -20:] = 0
  eligible = (seg > 0) & ~np.isin(tokens, SPECIAL.special_ids)
  inputs, pos, targets, weights = jax.jit(
    lambda k: mask_for_mlm(k, jnp.asarray(tokens), jnp.asarray(eligible), cfg, SPECIAL))(
      jax.random.key(0))
  inputs, pos, targets, weights = map(np.asarray, (inputs, pos, targets, weights))

  # Exactly round(15% of eligible) positions per row, all distinct and all eligible.
  per_row = weights.sum(1)
  np.testing.assert_array_equal(per_row, np.round(0.15 * eligible.sum(1)))
  chosen = [set(p[w]) for p, w in zip(pos, weights)]
  assert all(len(c) == n for c, n in zip(chosen, per_row))
  picked = np.zeros_like(eligible)
  for row, c in enumerate(chosen):
    picked[row, list(c)] = True
  assert not np.any(picked & ~eligible)  # never a special or padding token
  np.testing.assert_array_equal(inputs[~picked], tokens[~picked])  # nothing else changes
  np.testing.assert_array_equal(targets[weights], np.take_along_axis(tokens, pos, 1)[weights])

  # 80 / 10 / 10 replacement.
  new = inputs[picked]
  old = tokens[picked]
  as_mask = np.mean(new == SPECIAL.mask)
  unchanged = np.mean(new == old)
  random = 1 - as_mask - unchanged
  n = picked.sum()
  tolerance = 4 * math.sqrt(0.1 * 0.9 / n)
  assert abs(as_mask - 0.8) < 4 * math.sqrt(0.8 * 0.2 / n)
  # A random draw equals the original 1/256 of the time, so "unchanged" is 10% plus a little.
  assert abs(unchanged - (0.1 + 0.1 / 251)) < tolerance
  assert abs(random - 0.1) < tolerance
  assert not np.any(np.isin(new[(new != old) & (new != SPECIAL.mask)], SPECIAL.special_ids))


def test_masks_differ_per_key_and_repeat_per_key():
  cfg = tiny_config("mlm")
  tokens = jnp.asarray(packed_batch()["tokens"])
  eligible = tokens > 4
  a = mask_for_mlm(jax.random.key(1), tokens, eligible, cfg, SPECIAL)[1]
  b = mask_for_mlm(jax.random.key(1), tokens, eligible, cfg, SPECIAL)[1]
  c = mask_for_mlm(jax.random.key(2), tokens, eligible, cfg, SPECIAL)[1]
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_clm_counts_next_tokens_within_documents_only():
  cfg = tiny_config("clm")
  batch = {k: jnp.asarray(v) for k, v in packed_batch(B=2, T=16).items()}
  sums = objective_sums(build_model(cfg, 0), batch, jax.random.key(0), cfg, SPECIAL, False)
  # Row 0: documents of 9 and 7 tokens -> 8 + 6 targets. Row 1: 9 + 4 tokens (3 padding) -> 8 + 3.
  assert float(sums["count"]) == (8 + 6) + (8 + 3)


def test_prefix_lm_scores_only_the_continuation():
  cfg = tiny_config("prefix_lm")
  B, T = 64, 16
  prefix = np.asarray(draw_prefix_len(jax.random.key(0), B, T, cfg))
  assert prefix.min() >= 1 and prefix.max() <= int(0.9 * T)
  tokens = np.full((B, T), 7, np.int32)
  batch = {"tokens": jnp.asarray(tokens), "segment_ids": jnp.ones((B, T), jnp.int32),
           "positions": jnp.broadcast_to(jnp.arange(T), (B, T))}
  key = jax.random.key(5)
  sums = objective_sums(build_model(cfg, 0), batch, key, cfg, SPECIAL, False)
  prefix = np.asarray(draw_prefix_len(jax.random.split(key)[0], B, T, cfg))
  # Positions prefix-1 .. T-2 predict tokens prefix .. T-1.
  assert float(sums["count"]) == float(np.sum(T - prefix))


def test_schedules_hit_their_hand_computed_values():
  cfg = OptimizerConfig(lr=1.0, warmup_steps=10, end_lr_frac=0.1, schedule="cosine")
  lr = schedule(cfg, 110)
  assert float(lr(0)) == 0.0 and float(lr(5)) == pytest.approx(0.5)
  assert float(lr(10)) == pytest.approx(1.0)
  assert float(lr(60)) == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-6)  # half way through cosine
  assert float(lr(110)) == pytest.approx(0.1)
  lin = schedule(OptimizerConfig(lr=1.0, warmup_steps=0, end_lr_frac=0.0, schedule="linear"), 100)
  assert float(lin(25)) == pytest.approx(0.75)
  wsd = schedule(OptimizerConfig(lr=1.0, warmup_steps=10, end_lr_frac=0.0, schedule="wsd",
                                 decay_frac=0.2), 110)
  assert float(wsd(89)) == pytest.approx(1.0)  # stable until the last 20 steps
  assert float(wsd(100)) == pytest.approx(0.5)
  assert float(wsd(110)) == pytest.approx(0.0)


def test_weight_decay_skips_norms_biases_and_embeddings():
  _, params = abstract_model(tiny_config("mlm"))
  mask = {jax.tree_util.keystr(p): v
          for p, v in jax.tree_util.tree_flatten_with_path(decay_mask(params))[0]}
  decayed = sorted(k for k, v in mask.items() if v)
  assert decayed == sorted([
    "['backbone']['blocks']['attn']['key']['kernel'].value",
    "['backbone']['blocks']['attn']['out']['kernel'].value",
    "['backbone']['blocks']['attn']['query']['kernel'].value",
    "['backbone']['blocks']['attn']['value']['kernel'].value",
    "['backbone']['blocks']['mlp']['fc_in']['kernel'].value",
    "['backbone']['blocks']['mlp']['fc_out']['kernel'].value",
    "['mlm_head']['transform']['kernel'].value",
  ])


def test_flops_per_token_by_hand():
  D, F, L, T, V = 64, 256, 2, 32, 1000
  model = ModelConfig(vocab_size=V, embed_dim=D, num_heads=4, num_layers=L, mlp_dim=F,
                      max_seq_len=T)
  clm = Config(objective="clm", seq_len=T, model=model)
  blocks = L * (4 * D * D + 2 * D * F + 2 * T * D)
  assert training_flops_per_token(clm) == 6 * (blocks + D * V)
  mlm = Config(objective="mlm", seq_len=T, model=model)
  # The last layer: keys and values at all 32 positions; queries, output projection, MLP and
  # attention over the 32 keys at the M = ceil(0.15 * 32) = 5 masked ones.
  last = 2 * D * D + 5 / 32 * (2 * D * D + 2 * D * F + 2 * T * D)
  layers = blocks - (4 * D * D + 2 * D * F + 2 * T * D) + last
  assert training_flops_per_token(mlm) == pytest.approx(6 * (layers + 0.15 * (D * D + D * V)))


def _one_step(cfg: Config, mesh) -> tuple[float, list, object]:
  """(loss, updated parameters, optimizer state) of one jitted train step on a packed batch."""
  from jaxlm import sharding
  from jaxlm.train.optim import make_optimizer
  from jaxlm.train.state import create_train_state
  from jaxlm.train.step import jit_steps

  tx = make_optimizer(cfg.optimizer, cfg.steps)
  graphdef, state, state_sh = create_train_state(cfg, mesh, tx)
  step, _ = jit_steps(graphdef, cfg, SPECIAL, tx, state_sh, sharding.batch_sharding(mesh))
  batch = {k: jnp.asarray(v) for k, v in packed_batch().items()}
  with jax.set_mesh(mesh):
    state, metrics = step(state, batch)
  return float(metrics["loss"]), jax.tree.leaves(state.params), state.opt_state


def _assert_same_step(a, b, rtol: float) -> None:
  assert a[0] == pytest.approx(b[0], rel=rtol)
  for x, y in zip(a[1], b[1]):
    np.testing.assert_allclose(x, y, rtol=rtol, atol=1e-6)


def test_grad_accumulation_matches_one_big_batch():
  from test_sharding import _mesh

  results = []
  for accum in (1, 2, 4):
    cfg = dataclasses.replace(tiny_config("clm"), grad_accum=accum)
    results.append(_one_step(cfg, _mesh(1, 1, 1, jax.devices()[:1])))
  for result in results[1:]:
    _assert_same_step(result, results[0], rtol=1e-4)


@pytest.mark.parametrize("objective,chunk", [("clm", 6), ("prefix_lm", 5), ("mlm", 1)])
def test_chunked_loss_matches_the_whole_loss_on_a_sharded_mesh(objective, chunk):
  """Chunks change where the logits live, not the step: same loss, same updated parameters.
  (T = 16 in chunks of 6 or 5: the last chunk is padded with positions of weight 0; MLM scores
  M = 3 positions, one per chunk.)"""
  from test_sharding import _mesh

  whole = _one_step(tiny_config(objective), _mesh(2, 2, 2))
  chunked = _one_step(tiny_config(objective, loss_chunk=chunk), _mesh(2, 2, 2))
  _assert_same_step(chunked, whole, rtol=1e-5)


def test_adam_first_moment_in_bfloat16():
  from test_sharding import _mesh

  cfg = tiny_config("clm")
  f32 = _one_step(cfg, _mesh(1, 1, 1, jax.devices()[:1]))
  cfg = replace_at(cfg, "optimizer.mu_dtype", "bfloat16")
  bf16 = _one_step(cfg, _mesh(1, 1, 1, jax.devices()[:1]))
  adam = next(s for s in jax.tree.leaves(bf16[2], is_leaf=lambda x: hasattr(x, "mu"))
              if hasattr(s, "mu"))
  assert {x.dtype for x in jax.tree.leaves(adam.mu)} == {jnp.dtype(jnp.bfloat16)}
  assert {x.dtype for x in jax.tree.leaves(adam.nu)} == {jnp.dtype(jnp.float32)}
  _assert_same_step(bf16, f32, rtol=1e-2)  # the first step's update is m / sqrt(v): bf16-close
