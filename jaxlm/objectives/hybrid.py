"""GPT-BERT's causal + masked hybrid (Charpentier & Samuel, BabyLM 2024): one model, one tied
head, round(B · `config.hybrid.causal_fraction`) causal rows per batch (GPT: 1 in 16) and masked
next-token rows for the rest (`mntp.py`). It scores BLiMP causally, with CLM's logits (causal
attention, the tied head), as a GPT does: its causal rows trained exactly that; `jaxlm eval
--scoring pll` reads its masked rows instead, by MNTP's pseudo-log-likelihood (`pll_reader`)."""

from __future__ import annotations

from jaxlm.objectives import clm
from jaxlm.objectives.base import Objective
from jaxlm.objectives.mntp import head_macs, hybrid_sums

OBJECTIVE = Objective(
  name="hybrid", attention="prefix", head="tied", classifier_attention="bidirectional",
  classifier_readout="first", reports_perplexity=False, generates=True, hf_family=None,
  loss_sums=hybrid_sums, inference_logits=clm.clm_logits, head_macs_per_token=head_macs,
  pll_reader="mntp")
