"""Held-out evaluation: the one loop `jaxlm train` (periodic evals) and `jaxlm compare` (every
held-out row) share."""

from __future__ import annotations

import math

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


def bytes_per_token(data: pipeline.Data) -> float:
  """The held-out text's mean UTF-8 bytes per token (bits per byte = nats / ln 2 / this)."""
  return data.heldout_bytes / max(int((data.heldout.segment_ids > 0).sum()), 1)


def with_bits_per_byte(metrics: dict[str, float], objective: str,
                       per_token: float) -> dict[str, float]:
  """`metrics` plus held-out bits per byte where the loss is a likelihood: `bits_per_byte` for
  an exact one (CLM, prefix-LM), `bits_per_byte_bound` for a bound (MDLM). A masked-token loss
  gets none (it is not the text's likelihood; `jaxlm compare` reports it labelled as such)."""
  name = {"exact": "bits_per_byte", "bound": "bits_per_byte_bound"}.get(
    objectives.get(objective).likelihood)
  if name is None or not per_token:
    return metrics
  return {**metrics, name: metrics["loss"] / math.log(2) / per_token}
