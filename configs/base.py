"""Shared base for the shipped configs: the GPT-2 and BERT model families and their recipes.

Not a run config itself; `tiny.py`, `gpt2_124m.py`, `bert_base.py` and `bert_small.py` start here.
"""

from jaxlm.config import Config, DataConfig, ModelConfig, OptimizerConfig


def gpt2(num_layers: int, embed_dim: int, num_heads: int, seq_len: int = 1024) -> Config:
  """GPT-2: pre-LN, learned positions, causal LM, byte-level BPE, AdamW (0.9, 0.95), cosine."""
  return Config(
    objective="clm",
    seq_len=seq_len,
    batch_size=16,
    steps=10_000,
    eval_every=1000,
    checkpoint_every=1000,
    model=ModelConfig(max_seq_len=1024, embed_dim=embed_dim,
                      num_heads=num_heads, num_layers=num_layers, mlp_dim=4 * embed_dim,
                      position="learned", norm="pre", dropout=0.0, dtype="bfloat16"),
    optimizer=OptimizerConfig(lr=6e-4, schedule="cosine", warmup_steps=700, b1=0.9, b2=0.95,
                              weight_decay=0.1, grad_clip=1.0),
    data=DataConfig(tokenizer="bpe", vocab_size=50257),
  )


def bert(num_layers: int, embed_dim: int, num_heads: int, seq_len: int = 128) -> Config:
  """BERT: post-LN, learned positions, two token types, MLM at 15%, WordPiece, AdamW (0.9, 0.999),
  linear decay. BERT as published adds next-sentence prediction: `--config.objective=mlm_nsp`
  (RoBERTa dropped it; the default here is MLM alone)."""
  return Config(
    objective="mlm",
    seq_len=seq_len,
    batch_size=256,
    steps=10_000,
    eval_every=1000,
    checkpoint_every=1000,
    # 30,522 WordPiece tokens in a table padded to a multiple of 64, as NVIDIA's BERT pads it.
    model=ModelConfig(vocab_size=30528, max_seq_len=512, embed_dim=embed_dim,
                      num_heads=num_heads, num_layers=num_layers, mlp_dim=4 * embed_dim,
                      position="learned", norm="post", layer_norm_eps=1e-12, dropout=0.1,
                      type_vocab_size=2,
                      activation="gelu_exact",
                      dtype="bfloat16"),
    optimizer=OptimizerConfig(lr=1e-4, schedule="linear", warmup_steps=1000, b1=0.9, b2=0.999,
                              eps=1e-6, weight_decay=0.01, grad_clip=1.0, end_lr_frac=0.0),
    data=DataConfig(tokenizer="wordpiece", vocab_size=30522),
  )
