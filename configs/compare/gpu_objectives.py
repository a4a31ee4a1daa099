"""compare/gpu with the arms today's research compares: MLM, CLM, GPT-BERT's hybrid, CLM then
MLM and MDLM, each on 199.9M tokens at the L4-D256 shape. The `mlm` and `clm` runs are
compare/gpu's own (same configs), so run it in the same work directory after compare/gpu and
only the three new arms train (about 2.5 times compare/gpu's time in all on one GPU).

  jaxlm compare --config compare/gpu_objectives --workdir runs/compare-gpu
"""

import dataclasses

from jaxlm.config import load_config
from jaxlm.studies.config import CompareConfig


def get_config() -> CompareConfig:
  config = load_config("compare/gpu", expected=CompareConfig)
  return dataclasses.replace(config, objectives=("mlm", "clm", "hybrid", "clm_then_mlm", "mdlm"))
