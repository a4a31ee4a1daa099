"""Small builders shared by the tests: a tiny config, a model, a synthetic packed batch."""

from __future__ import annotations

import numpy as np

from jaxlm import objectives
from jaxlm.config import Config, ModelConfig, OptimizerConfig
from jaxlm.data.special_tokens import trained_layout
from jaxlm.objectives.build import build_model

SPECIAL = trained_layout(256)


def tiny_config(objective: str = "clm", **model_overrides) -> Config:
  model = dict(vocab_size=256, max_seq_len=32, embed_dim=32, num_heads=4, num_layers=2,
               mlp_dim=64)
  model["type_vocab_size"] = objectives.get(objective).token_types  # what its rows need
  model.update(model_overrides)
  return Config(objective=objective, seq_len=16, batch_size=8, steps=10,
                model=ModelConfig(**model), optimizer=OptimizerConfig(warmup_steps=0)).validate()


def model(config: Config, seed: int = 0):
  return build_model(config, seed)


def packed_batch(B: int = 8, T: int = 16, seed: int = 0, vocab: int = 256) -> dict:
  """Rows of two documents each (segment ids 1, 2), the last row ending in padding."""
  rng = np.random.default_rng(seed)
  tokens = rng.integers(5, vocab, (B, T)).astype(np.int32)
  cut = T // 2 + 1
  segment_ids = np.where(np.arange(T) < cut, 1, 2).astype(np.int32)[None].repeat(B, 0)
  positions = np.where(np.arange(T) < cut, np.arange(T), np.arange(T) - cut)[None].repeat(B, 0)
  segment_ids[-1, -3:] = 0
  tokens[-1, -3:] = 0
  return {"tokens": tokens, "segment_ids": segment_ids, "positions": positions.astype(np.int32)}


def objective_batch(objective: str, B: int = 8, T: int = 16, seed: int = 0) -> dict:
  """`packed_batch`, plus what the objective's rows carry: for sentence-pair objectives, token
  types (0 for the first document, 1 for the second) and alternating next-sentence labels."""
  batch = packed_batch(B, T, seed)
  if objectives.get(objective).rows == "sentence_pairs":
    batch["token_types"] = (batch["segment_ids"] == 2).astype(np.int32)
    batch["nsp_labels"] = (np.arange(B) % 2).astype(np.int32)
  return batch
