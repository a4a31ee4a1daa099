"""BERT-Small of the ELECTRA paper (Table 1): hidden 256, 4 heads, 12 layers, seq 128, batch 128.

ELECTRA factorises the embedding to 128 wide; jaxlm ties a full-width (256) embedding instead.
  jaxlm train --config configs/bert_small.py --workdir runs/bert-small
CPU smoke test:
  jaxlm train --config configs/bert_small.py --workdir /tmp/bert-small-smoke \
    --config.model.num_layers=2 --config.batch_size=8 --config.steps=5 --config.model.dtype=float32
"""

import dataclasses

from jaxlm.configs import base


def get_config():
  config = base.bert(num_layers=12, embed_dim=256, num_heads=4)
  return dataclasses.replace(config, batch_size=128, optimizer=dataclasses.replace(
    config.optimizer, lr=5e-4, warmup_steps=1000))
