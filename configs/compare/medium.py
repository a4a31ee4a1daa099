"""The CPU "medium" comparison: compare/tiny's recipe on a 4-layer, 256-wide model (5.5x the
parameters) with twice the batch, MLM vs CLM, BLiMP (100 pairs per paradigm) and the shipped
fine-tuning task with 3 seeds; about an hour on 2 CPU cores. Its committed report:
docs/results/compare_medium.md.

  jaxlm compare --config compare/medium --workdir runs/compare-medium
"""

import dataclasses

from jaxlm.config import load_config, override
from jaxlm.studies.config import CompareConfig

PRETRAIN = {"batch_size": "32", "log_every": "50", "model.embed_dim": "256",
            "model.num_layers": "4", "model.mlp_dim": "1024", "optimizer.warmup_steps": "100"}


def get_config() -> CompareConfig:
  config = load_config("compare/tiny", expected=CompareConfig)
  # lr 3e-4: the medium run was started before the fine-tuning sweep picked 1e-3 for the tiny
  # default; 4,000 training examples (2x the tiny default's).
  return dataclasses.replace(
    config, pretrain=override(config.pretrain, PRETRAIN),
    finetune=dataclasses.replace(config.finetune, lr=3e-4, max_train_examples=4000))
