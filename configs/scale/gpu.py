"""Scaling laws per objective on one GPU: MLM and CLM at five sizes (L = 2..10 layers, D = 64·L:
0.4M to 49M non-embedding parameters), each at 20M, 80M and 320M tokens (sequences of 256, batch
64, bfloat16), BLiMP on all 67,000 pairs and the shipped fine-tuning task with 5 seeds. Train on
your own text: the embedded corpus is about 7M tokens, so 320M would be some 45 epochs of it.
Pre-training the 30 points takes about 0.9 hours on an H200 (measured step throughput,
benchmarks/scale_gpu_cost.py; docs/scale.md has the table).

  jaxlm scale --config scale/gpu --workdir runs/scale-gpu --config.pretrain.data.source=text:DIR
"""

import dataclasses

from jaxlm.config import load_config, override
from jaxlm.studies.config import CompareConfig, ScaleConfig

PRETRAIN = {"seq_len": "256", "batch_size": "64", "model.max_seq_len": "256",
            "model.dtype": "bfloat16", "data.vocab_size": "16384", "log_every": "100",
            "optimizer.lr": "1e-3"}


def get_config() -> ScaleConfig:
  compare = load_config("compare/tiny", expected=CompareConfig)
  return ScaleConfig(
    pretrain=override(compare.pretrain, PRETRAIN), objectives=("mlm", "clm"), depths=(2, 4, 6, 8, 10),
    width_per_layer=64, head_dim=64, mlp_ratio=4, tokens=(20_000_000, 80_000_000, 320_000_000), curve_points=10,
    warmup_frac=0.05, zero_shot=("blimp",), zero_shot_sample=0, tasks=("goemotions_sentiment",),
    finetune=dataclasses.replace(compare.finetune, seeds=5, max_train_examples=0))
