"""Training data: sources/ (by scheme), tokenizer, packing, the grain pipeline, TFDS
preparation. Never imports Flax."""
