"""BERT-base (110M): 12 layers, 768 wide, 12 heads, post-LN, MLM at 15%, seq 128, batch 256.

On one GPU:
  jaxlm train --config configs/bert_base.py --workdir runs/bert --config.data.source=text:DIR
CPU smoke test (same code path, toy shape):
  jaxlm train --config configs/bert_base.py --workdir /tmp/bert-smoke --config.model.num_layers=2 \
    --config.model.embed_dim=64 --config.model.num_heads=2 --config.model.mlp_dim=256 \
    --config.batch_size=8 --config.data.vocab_size=4096 --config.steps=5 --config.model.dtype=float32
"""

from jaxlm.configs import base


def get_config():
  return base.bert(num_layers=12, embed_dim=768, num_heads=12)
