"""The arms today's BERT-vs-GPT research compares, at the CPU default's budget: MLM, CLM,
GPT-BERT's causal + masked next-token hybrid, CLM then MLM, and masked diffusion (MDLM), each
pre-trained on the same 1M tokens with compare/tiny's shape and recipe, then BLiMP and Zorro
with their references, the learning curve and the shipped task fine-tuned beside the untrained
arms. About 28 minutes on 2 AVX2 CPU cores. Its committed report:
docs/results/compare_objectives.md.

  jaxlm compare --config compare/objectives --workdir runs/compare-objectives
"""

import dataclasses

from jaxlm.config import load_config
from jaxlm.studies.config import CompareConfig


def get_config() -> CompareConfig:
  config = load_config("compare/tiny", expected=CompareConfig)
  return dataclasses.replace(config, objectives=("mlm", "clm", "hybrid", "clm_then_mlm", "mdlm"),
                             zero_shot=("blimp", "zorro"))
