"""The ELECTRA paper's small-compute comparison: BERT-Small-shaped models pre-trained with MLM,
CLM and prefix-LM on the same data, then evaluated zero-shot on BLiMP and fine-tuned on the
shipped task and GLUE (one GPU; cost in docs/compare.md).

  jaxlm compare --config compare/bert_small --workdir runs/compare-small \
    --config.pretrain.data.source=text:/data/books --config.glue_dir=/data/glue
"""

from jaxlm.config import load_config
from jaxlm.finetune.config import FinetuneConfig
from jaxlm.studies.config import CompareConfig


def get_config() -> CompareConfig:
  return CompareConfig(
    pretrain=load_config("bert_small"), objectives=("mlm", "clm", "prefix_lm"), baseline=True,
    tasks=("goemotions_sentiment", "cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli",
           "rte"),
    finetune=FinetuneConfig(lr=1e-4, batch_size=32, epochs=3, seeds=5))
