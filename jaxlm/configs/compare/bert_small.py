"""The ELECTRA paper's small-compute comparison: BERT-Small-shaped models pre-trained with MLM,
CLM and prefix-LM on the same data, then fine-tuned on GLUE (one GPU).

  jaxlm compare --config configs/compare/bert_small.py --workdir runs/compare-small \
    --config.pretrain.data.source=text:/data/books --config.glue_dir=/data/glue
"""

from pathlib import Path

from jaxlm.eval.compare import CompareConfig
from jaxlm.config import FinetuneConfig, load_config


def get_config() -> CompareConfig:
  pretrain = load_config(Path(__file__).parents[1] / "bert_small.py")
  pretrain.finetune = FinetuneConfig(lr=1e-4, batch_size=32, epochs=3, seeds=5)
  return CompareConfig(pretrain=pretrain, objectives="mlm,clm,prefix_lm", baseline=True,
                       tasks="cola,sst2,mrpc,stsb,qqp,mnli,qnli,rte")
