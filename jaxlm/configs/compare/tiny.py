"""BERT (MLM) vs GPT (CLM) at tiny scale on the embedded corpus: a few minutes on a laptop CPU.

  jaxlm compare --config configs/compare/tiny.py --workdir runs/compare
  jaxlm compare --config configs/compare/tiny.py --workdir runs/compare3 \
    --config.objectives=mlm,clm,prefix_lm --config.tasks=sst2,cola,rte

GLUE data comes from --config.glue_dir or $GLUE_DIR; without either, no GLUE tasks run.
"""

from pathlib import Path

from jaxlm.eval.compare import CompareConfig
from jaxlm.config import FinetuneConfig, load_config


def get_config() -> CompareConfig:
  pretrain = load_config(Path(__file__).parents[1] / "tiny.py")
  pretrain.steps = 400
  pretrain.eval_every = 0
  pretrain.log_every = 20
  pretrain.finetune = FinetuneConfig(lr=3e-4, batch_size=32, epochs=2, max_train_examples=1000,
                                     seeds=3, max_seq_len=128)
  return CompareConfig(pretrain=pretrain, objectives="mlm,clm", baseline=True, tasks="sst2,rte")
