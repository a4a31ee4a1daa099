"""Tiny GPT/BERT-shaped model that trains in about a minute on a laptop CPU.

  jaxlm train --config configs/tiny.py --workdir runs/tiny-clm
  jaxlm train --config configs/tiny.py --workdir runs/tiny-mlm --config.objective=mlm
"""

from jaxlm.config import Config, DataConfig, ModelConfig, OptimizerConfig


def get_config() -> Config:
  return Config(
    objective="clm",
    seq_len=128,
    batch_size=16,
    steps=300,
    log_every=10,
    eval_every=100,
    eval_batches=4,
    model=ModelConfig(max_seq_len=128, embed_dim=128, num_heads=4,
                      num_layers=2, mlp_dim=512, norm="pre", dtype="float32",
                      # Exact GELU: every objective's run then exports to transformers (the
                      # pre-LN masked-LM classes apply exact GELU; GPT-2 and GPT-NeoX take
                      # either), docs/inference.md.
                      activation="gelu_exact",
                      # Two layers unrolled: on CPU a scan's stacked activations and their
                      # copies cost more than the second layer's compile (benchmarks/README.md).
                      scan_layers=False),
    optimizer=OptimizerConfig(lr=2e-3, schedule="cosine", warmup_steps=30, weight_decay=0.1),
    data=DataConfig(source="default", tokenizer="bpe", vocab_size=4096),
  )
