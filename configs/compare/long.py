"""`compare/long`: the CPU default's shape and recipe (compare/tiny) on about 10M pre-training
tokens per objective instead of 1M, BabyLM's smallest budget: does BLiMP rise above the bigram
reference with tokens, and does the frozen-feature probe separate from random features? About
33 minutes on 2 CPU cores (AVX2). Its committed report: docs/results/compare_long.md.

  jaxlm compare --config compare/long --workdir runs/compare-long

10M tokens are 1.4 passes over the embedded corpus (7.1M training tokens at V=2,048), so the
learning curve's last points see repeated text (the data order is reshuffled each pass).
"""

import dataclasses

from jaxlm.config import load_config, override
from jaxlm.studies.config import CompareConfig

# 4,883 steps of 16 x 128 tokens: 10,000,384 tokens. The learning curve at 1M, 2M and 5M (on
# BabyLM's log grid) and at the end.
PRETRAIN = {"steps": "4883", "log_every": "100", "optimizer.warmup_steps": "100",
            "checkpoint_tokens": "1e6,2e6,5e6"}


def get_config() -> CompareConfig:
  config = load_config("compare/tiny", expected=CompareConfig)
  return dataclasses.replace(config, pretrain=override(config.pretrain, PRETRAIN),
                             finetune=dataclasses.replace(config.finetune, seeds=5))
