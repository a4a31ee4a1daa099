"""Held-out evaluation: the one loop `jaxlm train` (periodic evals) and `jaxlm compare` (every
held-out row) share."""

from __future__ import annotations

import jax
import numpy as np

from jaxlm import objectives
from jaxlm.data import pipeline
from jaxlm.data.packing import PackedRows


def evaluate(eval_step, params, rows: PackedRows, config, batch_sh,
             num_batches: int | None = None) -> dict[str, float]:
  """The objective's metrics over the first `num_batches` batches of `rows` in order (default
  `config.eval_batches`): the same rows and, through the eval step's fixed keys, the same MLM
  masks and prefix lengths at every evaluation."""
  it = iter(pipeline.batches(rows, config.batch_size, config.seed, shuffle=False))
  total = None
  for i in range(config.eval_batches if num_batches is None else num_batches):
    sums = eval_step(params, pipeline.to_global(next(it), batch_sh), np.int32(i))
    total = sums if total is None else jax.tree.map(lambda a, b: a + b, total, sums)
  return {k: float(v) for k, v in objectives.summarize(total, config.objective).items()}
