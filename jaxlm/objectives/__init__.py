"""Pre-training objectives: the registry, and the two calls the train step makes.

Each objective is one file defining an `Objective` record (`base.py`). Adding one: a file with
its `OBJECTIVE`, one line here; tests/objectives/test_contract.py then checks it (attention by
gradient, predicted-token counts, FLOPs, exact resume).

Everything here runs inside the jitted step. MLM masking and prefix lengths are drawn on the
device from the step's RNG, so the input pipeline is identical for every objective and a resumed
run draws exactly what an uninterrupted one would. Losses come back as sums with their token
counts, so gradient accumulation and evaluation average over predicted tokens exactly.
"""

from __future__ import annotations

import jax

from jaxlm.data.packing import Batch
from jaxlm.data.special_tokens import SpecialTokens
from jaxlm.errors import ConfigError
from jaxlm.objectives import clm, losses, mlm, mlm_nsp, prefix_lm
from jaxlm.objectives.base import Objective

OBJECTIVES: dict[str, Objective] = {
  "clm": clm.OBJECTIVE,
  "mlm": mlm.OBJECTIVE,
  "mlm_nsp": mlm_nsp.OBJECTIVE,
  "prefix_lm": prefix_lm.OBJECTIVE,
}


def get(name: str) -> Objective:
  if name not in OBJECTIVES:
    raise ConfigError(f"config.objective={name!r}: allowed values are {', '.join(OBJECTIVES)}")
  return OBJECTIVES[name]


def summarize(sums: dict[str, jax.Array], objective: str) -> dict[str, jax.Array]:
  """The metrics `objective` reports from summed counts."""
  return losses.summarize(sums, get(objective).reports_perplexity)


def objective_sums(model, batch: Batch, key: jax.Array, config,
                   special: SpecialTokens, dropout: bool) -> dict[str, jax.Array]:
  """Loss, correct predictions and predicted-token count, summed over the batch.

  batch: tokens_BxT, segment_ids_BxT (0 = padding; a new id per packed document), positions_BxT.
  """
  k_objective, k_dropout = jax.random.split(key)
  drops = config.model.dropout > 0 or config.model.attention_dropout > 0
  dropout_key = k_dropout if dropout and drops else None
  return get(config.objective).loss_sums(model, batch, k_objective, config, special, dropout_key)
