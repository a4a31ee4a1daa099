"""GPT-2 small (124M): 12 layers, 768 wide, 12 heads, seq 1024, bf16.

On one GPU:
  jaxlm train --config configs/gpt2_124m.py --workdir runs/gpt2 --config.data.source=text:DIR
CPU smoke test (same code path, toy shape):
  jaxlm train --config configs/gpt2_124m.py --workdir /tmp/gpt2-smoke --config.model.num_layers=2 \
    --config.model.embed_dim=64 --config.model.num_heads=2 --config.model.mlp_dim=256 \
    --config.seq_len=128 --config.data.vocab_size=4096 --config.steps=5 --config.model.dtype=float32
"""

from jaxlm.configs import base


def get_config():
  return base.gpt2(num_layers=12, embed_dim=768, num_heads=12)
