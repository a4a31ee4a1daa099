"""The contract every registered objective meets (parametrised over the registry, so a new one
is checked by adding it): its declared attention holds by gradient, its predicted-token count is
what its rule says, its FLOPs count its head, and its step is jit-compatible and deterministic."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.model import SPECIAL, model, objective_batch, packed_batch, tiny_config

from jaxlm import objectives
from jaxlm.model.masks import MaskSpec
from jaxlm.train.flops import training_flops_per_token

T = 16


@pytest.mark.parametrize("name", sorted(objectives.OBJECTIVES))
def test_declared_attention_holds_by_gradient(name):
  record = objectives.get(name)
  lm = model(tiny_config(name))
  tokens = jnp.asarray(packed_batch(B=1, T=T)["tokens"])
  x = lm.backbone.embed_tokens(tokens, jnp.arange(T)[None])
  prefix = jnp.asarray([T // 2])
  spec = MaskSpec(record.attention, prefix_len_B=prefix if record.attention == "prefix" else None)
  t = T // 4  # a query inside the prefix, for prefix-LM
  grad = jax.grad(lambda x: lm.backbone.encode(x, spec, jnp.arange(T)[None])[0, t].sum())(x)
  sees = np.abs(np.asarray(grad[0])).sum(-1) > 0
  expected = {"causal": np.arange(T) <= t, "bidirectional": np.ones(T, bool),
              "prefix": (np.arange(T) <= t) | (np.arange(T) < T // 2)}[record.attention]
  np.testing.assert_array_equal(sees, expected)


@pytest.mark.parametrize("name", sorted(objectives.OBJECTIVES))
def test_counts_flops_and_determinism(name):
  config = tiny_config(name)
  lm = model(config)
  batch = {k: jnp.asarray(v) for k, v in objective_batch(name, T=T).items()}
  sums_fn = jax.jit(lambda key: objectives.objective_sums(lm, batch, key, config, SPECIAL, False))
  sums = sums_fn(jax.random.key(0))
  again = sums_fn(jax.random.key(0))
  assert float(sums["loss_sum"]) == float(again["loss_sum"])  # a pure function of the key
  seg = np.asarray(batch["segment_ids"])
  next_pairs = int(((np.roll(seg, -1, 1) == seg) & (seg > 0))[:, :-1].sum())
  real = int((seg > 0).sum())
  count = int(sums["count"])
  if objectives.get(name).reports_perplexity:
    assert 0 < count <= next_pairs
  else:
    assert 0 < count <= real
  metrics = objectives.summarize(sums, name)
  assert ("perplexity" in metrics) == objectives.get(name).reports_perplexity
  flops = training_flops_per_token(config)
  head = objectives.get(name).head_macs_per_token(config)
  assert flops > 6 * head > 0  # 3 passes x 2 FLOPs per multiply-add, plus the blocks
