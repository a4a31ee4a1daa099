"""MDLM (masked diffusion): its loss is the any-order bound on the model's own likelihood, each
row is weighted by 1/t, t is uniform over [min_t, 1], and the metrics report the bound."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers.model import SPECIAL, packed_batch, tiny_config

from jaxlm import objectives
from jaxlm.config import ConfigError, load_config, replace_at
from jaxlm.data.special_tokens import trained_layout
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives import mdlm, objective_sums
from jaxlm.objectives.build import build_model

V, L = 8, 3  # ids 0-4 are the specials, 5-7 the ordinary tokens; sequences of 3 tokens


def _peaked_model(config, scale: float = 0.1):
  """The model with N(0, scale) noise added to every weight: more confident, order-dependent
  predictions than at initialisation, so the bound's Jensen gap is not vanishingly small."""
  graphdef, state = nnx.split(build_model(config, 0))
  leaves, treedef = jax.tree.flatten(state)
  keys = jax.random.split(jax.random.key(1), len(leaves))
  leaves = [x + scale * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
  return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))


def _row_batch(tokens_BxT: np.ndarray) -> dict:
  B, T = tokens_BxT.shape
  return {"tokens": jnp.asarray(tokens_BxT, jnp.int32), "segment_ids": jnp.ones((B, T), jnp.int32),
          "positions": jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32), (B, T))}


def _any_order_log_probs(lm, special) -> np.ndarray:
  """log q(x_i = v | state) for every partially masked state of L tokens: [(V+1)^L, L, V], the
  state's index written in base V+1 with digit V for [MASK]."""
  digits = np.asarray(list(itertools.product(range(V + 1), repeat=L)))
  tokens = np.where(digits == V, special.mask, digits)
  batch = _row_batch(tokens)
  h = lm.hidden(batch["tokens"], MaskSpec("bidirectional", batch["segment_ids"]),
                batch["positions"])
  return np.asarray(jax.nn.log_softmax(lm.mlm_logits(h).astype(jnp.float32), axis=-1),
                    np.float64)


def test_loss_is_the_any_order_bound_on_the_models_own_likelihood():
  config = replace_at(tiny_config("mdlm", vocab_size=V), "mdlm.min_t", 1e-6)
  special = trained_layout(V)
  lm = _peaked_model(config)
  logq = _any_order_log_probs(lm, special)

  # The model's generative process: unmask the L positions in a uniformly random order, each
  # token drawn from q given the tokens unmasked so far. log of each order's probability, for
  # every one of the V^L sequences at once.
  seqs = np.asarray(list(itertools.product(range(V), repeat=L)))  # [V^L, L]
  weights = (V + 1) ** np.arange(L - 1, -1, -1)
  log_p_order = []
  for order in itertools.permutations(range(L)):
    total = np.zeros(len(seqs))
    state = np.full((len(seqs), L), V)  # all masked
    for i in order:
      total += logq[state @ weights, i, seqs[:, i]]
      state[:, i] = seqs[:, i]
    log_p_order.append(total)
  log_p_order = np.stack(log_p_order)  # [L!, V^L]
  p = np.exp(log_p_order).mean(axis=0)  # p_theta(x): the mixture over orders
  bound = -log_p_order.mean(axis=0)  # E_order[-log prod_k q(...)]: what MDLM's loss estimates
  assert p.sum() == pytest.approx(1.0, abs=1e-6)  # a distribution over the V^L sequences
  assert np.all(bound >= -np.log(p) - 1e-9)  # Jensen: the bound holds for every sequence
  assert np.max(bound + np.log(p)) > 1e-2  # ... and is not trivially tight for this model

  # The objective's loss on one all-ordinary sequence, over many draws of t and the masks,
  # converges to that sequence's bound (in nats per token).
  x = np.asarray([5, 7, 6])
  want = bound[int(np.ravel_multi_index(x, (V,) * L))] / L
  batch = _row_batch(np.tile(x, (128, 1)))
  estimate = jax.jit(jax.vmap(lambda key: (lambda s: s["loss_sum"] / s["count"])(
    objective_sums(lm, batch, key, config, special, False))))
  draws = np.asarray(estimate(jax.random.split(jax.random.key(0), 100)), np.float64)
  stderr = draws.std(ddof=1) / math.sqrt(len(draws))
  assert abs(draws.mean() - want) < 4 * stderr + 1e-4, (draws.mean(), want, stderr)
  assert stderr < 0.02 * want  # a test with teeth: the estimate is tight


def test_each_row_is_weighted_by_one_over_its_t():
  config = tiny_config("mdlm")
  lm = build_model(config, 0)
  raw = packed_batch(B=3, T=16)
  raw["tokens"][:, 0] = SPECIAL.special_ids[2]  # a [CLS] opening every row: never masked
  batch = {k: jnp.asarray(v) for k, v in raw.items()}
  t_B = jnp.asarray([0.2, 0.5, 0.9])
  key = jax.random.key(3)
  sums = mdlm.sums_at(lm, batch, t_B, key, config, SPECIAL, None)

  # By hand: the same mask draw, the masked tokens replaced by [MASK], cross-entropy per position.
  tokens, seg = raw["tokens"], raw["segment_ids"]
  eligible = (seg > 0) & ~np.isin(tokens, SPECIAL.special_ids)
  masked = eligible & (np.asarray(jax.random.uniform(key, tokens.shape)) < np.asarray(t_B)[:, None])
  assert 0 < masked.sum() < eligible.sum()
  inputs = np.where(masked, SPECIAL.mask, tokens)
  h = lm.hidden(jnp.asarray(inputs), MaskSpec("bidirectional", batch["segment_ids"]),
                batch["positions"])
  logp = np.asarray(jax.nn.log_softmax(lm.mlm_logits(h).astype(jnp.float32), -1), np.float64)
  ce = -np.take_along_axis(logp, tokens[..., None], -1)[..., 0]
  want_loss = sum(ce[r][masked[r]].sum() / float(t_B[r]) for r in range(3))
  want_correct = (logp.argmax(-1) == tokens)[masked].sum()
  assert float(sums["loss_sum"]) == pytest.approx(want_loss, rel=1e-5)
  assert float(sums["count"]) == eligible.sum()  # the loss is per real token ...
  assert float(sums["accuracy_count"]) == masked.sum()  # ... accuracy per masked one
  assert float(sums["correct_sum"]) == want_correct

  # Chunked logits give the same sums.
  chunked = mdlm.sums_at(lm, batch, t_B, key, tiny_config("mdlm", loss_chunk=5), SPECIAL, None)
  for k in sums:
    assert float(chunked[k]) == pytest.approx(float(sums[k]), rel=1e-5)

  # The objective is these sums at t drawn by `draw_t` from its key.
  k_objective = jax.random.split(key)[0]
  k_t, k_mask = jax.random.split(k_objective)
  t_drawn = mdlm.draw_t(k_t, 3, config.mdlm.min_t)
  full = objective_sums(lm, batch, key, config, SPECIAL, False)
  again = mdlm.sums_at(lm, batch, t_drawn, k_mask, config, SPECIAL, None)
  assert float(full["loss_sum"]) == pytest.approx(float(again["loss_sum"]), rel=1e-6)


def test_t_is_uniform_on_min_t_to_1_and_stratified():
  t = np.asarray(mdlm.draw_t(jax.random.key(0), 1000, 0.25))
  assert t.min() >= 0.25 and t.max() <= 1.0
  slices = np.floor((t - 0.25) / 0.75 * 1000).astype(int)
  np.testing.assert_array_equal(slices, np.arange(1000))  # one draw per slice, in row order
  many = np.asarray(jax.vmap(lambda k: mdlm.draw_t(k, 4, 0.25))(
    jax.random.split(jax.random.key(1), 4000)))
  # Each row's t alone is uniform on [0.25, 1]: mean 0.625.
  assert abs(many.mean() - 0.625) < 4 * (0.75 / math.sqrt(12)) / math.sqrt(many.size)


def test_metrics_report_a_perplexity_bound_and_masked_token_accuracy():
  sums = {"loss_sum": jnp.asarray(30.0), "correct_sum": jnp.asarray(4.0),
          "count": jnp.asarray(10.0), "accuracy_count": jnp.asarray(5.0)}
  metrics = objectives.summarize(sums, "mdlm")
  assert float(metrics["loss"]) == pytest.approx(3.0)
  assert float(metrics["perplexity_bound"]) == pytest.approx(math.exp(3.0), rel=1e-6)
  assert "perplexity" not in metrics  # not an exact next-token loss
  assert float(metrics["accuracy"]) == pytest.approx(0.8)
  assert float(metrics["predicted_tokens"]) == 5.0
  record = objectives.get("mdlm")
  assert record.likelihood == "bound" and not record.reports_perplexity
  assert "perplexity_bound" not in objectives.summarize(sums, "mlm")


@pytest.mark.parametrize("value", ["0", "1"])
def test_min_t_outside_0_1_is_a_one_line_error(value):
  with pytest.raises(ConfigError) as err:
    load_config("tiny", {"objective": "mdlm", "mdlm.min_t": value})
  assert f"config.mdlm.min_t={float(value)}: must be in (0, 1)" in str(err.value)
  assert "\n" not in str(err.value)
  assert load_config("tiny", {"mdlm.min_t": "0.01"}).mdlm.min_t == 0.01


def test_a_few_steps_lower_the_loss_on_a_repeated_batch():
  from jaxlm import sharding
  from jaxlm.config import MeshConfig
  from jaxlm.train.optim import make_optimizer
  from jaxlm.train.state import create_train_state
  from jaxlm.train.step import jit_steps

  config = replace_at(replace_at(tiny_config("mdlm"), "steps", 40), "optimizer.lr", 3e-3)
  mesh = sharding.make_mesh(MeshConfig(1, 1, 1), jax.devices()[:1])
  tx = make_optimizer(config.optimizer, config.steps)
  graphdef, state, state_sh = create_train_state(config, mesh, tx)
  step, _ = jit_steps(graphdef, config, SPECIAL, tx, state_sh, sharding.batch_sharding(mesh))
  batch = {k: jnp.asarray(v) for k, v in packed_batch().items()}

  @jax.jit
  def held_loss(params):  # the bound on this batch, averaged over 64 fixed draws
    sums = jax.vmap(lambda key: objective_sums(nnx.merge(graphdef, params), batch, key, config,
                                               SPECIAL, False))(
      jax.random.split(jax.random.key(7), 64))
    return sums["loss_sum"].sum() / sums["count"].sum()

  with jax.set_mesh(mesh):
    before = float(held_loss(state.params))
    for _ in range(config.steps):
      state, metrics = step(state, batch)
    after = float(held_loss(state.params))
  assert "perplexity_bound" in metrics
  assert before == pytest.approx(math.log(256), abs=0.3)  # uniform predictions at the start
  assert after < before - 0.6, (before, after)  # 5.5 -> 4.3 nats per token here
