"""Scaling laws per objective at CPU scale, the default of `jaxlm scale`: MLM and CLM at four
sizes (L = 1..4 layers, D = 64·L: 49K to 3.1M non-embedding parameters), 0.5M tokens each, on
the embedded corpus with compare/tiny's recipe (RoPE, V=2,048, 30% masking); BLiMP at 20 pairs per
paradigm and the shipped fine-tuning task with 2 seeds. About 25 minutes on 2 CPU cores; its
committed report: docs/results/scale_tiny.md.

  jaxlm scale --workdir runs/scale
  jaxlm scale --workdir runs/scale-nsp --config.objectives=mlm,mlm_nsp,clm
"""

import dataclasses

from jaxlm.config import load_config
from jaxlm.studies.config import CompareConfig, ScaleConfig


def get_config() -> ScaleConfig:
  compare = load_config("compare/tiny", expected=CompareConfig)
  return ScaleConfig(
    pretrain=compare.pretrain, objectives=("mlm", "clm"), depths=(1, 2, 3, 4), width_per_layer=64,
    head_dim=32, mlp_ratio=4, tokens=(500_000,), curve_points=8, warmup_frac=0.1,
    zero_shot=("blimp",), zero_shot_sample=20, tasks=("goemotions_sentiment",),
    finetune=dataclasses.replace(compare.finetune, seeds=2, max_train_examples=1000))
