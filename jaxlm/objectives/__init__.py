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

import functools

import jax

from jaxlm.data.packing import Batch
from jaxlm.data.special_tokens import SpecialTokens
from jaxlm.errors import ConfigError
from jaxlm.objectives import (
  clm,
  clm_then_mlm,
  hybrid,
  losses,
  mdlm,
  mlm,
  mlm_nsp,
  mntp,
  prefix_lm,
)
from jaxlm.objectives.base import Objective

OBJECTIVES: dict[str, Objective] = {
  "clm": clm.OBJECTIVE,
  "mlm": mlm.OBJECTIVE,
  "mlm_nsp": mlm_nsp.OBJECTIVE,
  "prefix_lm": prefix_lm.OBJECTIVE,
  "mdlm": mdlm.OBJECTIVE,
  "mntp": mntp.OBJECTIVE,
  "hybrid": hybrid.OBJECTIVE,
  "clm_then_mlm": clm_then_mlm.OBJECTIVE,
}


def get(name: str) -> Objective:
  if name not in OBJECTIVES:
    raise ConfigError(f"config.objective={name!r}: allowed values are {', '.join(OBJECTIVES)}")
  return OBJECTIVES[name]


def summarize(sums: dict[str, jax.Array], objective: str) -> dict[str, jax.Array]:
  """The metrics `objective` reports from summed counts."""
  record = get(objective)
  return losses.summarize(sums, record.reports_perplexity, record.likelihood)


def objective_sums(model, batch: Batch, key: jax.Array, config,
                   special: SpecialTokens, dropout: bool,
                   step: jax.Array | None = None) -> dict[str, jax.Array]:
  """Loss, correct predictions and predicted-token count, summed over the batch.

  batch: tokens_BxT, segment_ids_BxT (0 = padding; a new id per packed document), positions_BxT.
  step: the optimizer step, for objective schedules (the phase it trains); None: the last phase.
  """
  k_objective, k_dropout = jax.random.split(key)
  drops = config.model.dropout > 0 or config.model.attention_dropout > 0
  dropout_key = k_dropout if dropout and drops else None
  record = get(config.objective)
  args = (model, batch, k_objective, config, special, dropout_key)
  if record.phases and step is not None:
    return jax.lax.switch(record.phase_of(step, config),
                          [functools.partial(phase.loss_sums, *args) for phase in record.phases])
  return record.loss_sums(*args)
