"""CLM then MLM (Gisserot-Boukhlef et al. 2025): one run, one model, causal next-token
prediction for the first `config.schedule.first_frac` of its steps, then MLM for the rest.

An objective schedule: the phase is a function of the optimizer step, so the switch happens
inside the jitted step (`jax.lax.switch`: only the current phase's branch runs), the attention
mask switches with the objective, and a run resumed inside either phase, or across the switch,
replays exactly what an uninterrupted one computes. The model carries MLM's head from the start
(its CLM phase reads the tied projection, the same decoder weights MLM's head ends in); what the
run ends as, an MLM, decides evaluation, scoring, fine-tuning and export. The logs carry the
step's `phase` (0: CLM, 1: MLM); held-out evaluation measures the final objective throughout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlm.objectives import clm, mlm
from jaxlm.objectives.base import Objective

PHASES = (clm.OBJECTIVE, mlm.OBJECTIVE)


def switch_step(config) -> int:
  """The first step of the MLM phase."""
  return round(config.schedule.first_frac * config.steps)


def phase_of(step: jax.Array, config) -> jax.Array:
  return (step >= switch_step(config)).astype(jnp.int32)


def head_macs(config) -> float:
  """The heads' multiply-adds per token, averaged over the run's steps."""
  first = switch_step(config) / max(config.steps, 1)
  return (first * clm.OBJECTIVE.head_macs_per_token(config)
          + (1 - first) * mlm.OBJECTIVE.head_macs_per_token(config))


def read_fraction(config) -> float:
  """The last layer's share of positions, averaged over the run's steps (CLM's: all)."""
  first = switch_step(config) / max(config.steps, 1)
  return first + (1 - first) * mlm.read_fraction(config)


OBJECTIVE = Objective(
  name="clm_then_mlm", attention="bidirectional", head="mlm_transform",
  classifier_attention="bidirectional", classifier_readout="first", reports_perplexity=False,
  generates=False, hf_family="bert", loss_sums=mlm.mlm_sums, inference_logits=mlm.mlm_logits,
  head_macs_per_token=head_macs, phases=PHASES, phase_of=phase_of, read_fraction=read_fraction)
