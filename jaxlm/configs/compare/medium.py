"""The CPU "medium" comparison: a 4-layer, 256-wide model on the whole embedded corpus, MLM vs
CLM, BLiMP (100 pairs per paradigm) and the shipped fine-tuning task with 3 seeds; under an hour on
2 CPU cores. Its committed report: docs/results/compare_medium.md.

  jaxlm compare --config compare/medium --workdir runs/compare-medium
"""

from jaxlm.config import apply_override, load_config
from jaxlm.eval.compare import CompareConfig
from jaxlm.eval.recipe import FinetuneConfig

PRETRAIN = {  # on configs/tiny.py: the tiny default's recipe (compare/tiny), a wider, deeper model
  "steps": "500", "batch_size": "32", "eval_every": "0", "log_every": "50",
  "model.embed_dim": "256", "model.num_layers": "4", "model.num_heads": "4",
  "model.mlp_dim": "1024", "model.position": "rope", "model.vocab_size": "2048",
  "mlm.mask_rate": "0.3", "optimizer.warmup_steps": "100",
}


def get_config() -> CompareConfig:
  pretrain = load_config("tiny")
  for key, value in PRETRAIN.items():
    apply_override(pretrain, key, value)
  return CompareConfig(
    pretrain=pretrain, objectives="mlm,clm", baseline=True, tasks="goemotions_sentiment",
    finetune=FinetuneConfig(lr=3e-4, batch_size=32, epochs=2, max_train_examples=4000, seeds=3,
                            max_seq_len=48))
