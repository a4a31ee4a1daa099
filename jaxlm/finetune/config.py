"""The fine-tuning recipe: one for every variant of a comparison (`jaxlm finetune`, `compare`).

It is not part of the pre-training Config: a run is pre-trained once and fine-tuned under any
number of recipes. On the command line its fields keep the `finetune.` prefix
(`jaxlm finetune ... --config.finetune.lr=5e-5`, `jaxlm compare --config.finetune.seeds=5`).
"""

from __future__ import annotations

import dataclasses
import math

from jaxlm.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
  lr: float = 1e-4  # peak learning rate
  batch_size: int = 32  # examples per step
  epochs: int = 3  # passes over the training split
  warmup_frac: float = 0.1  # of the steps; then linear decay to 0
  weight_decay: float = 0.01  # AdamW
  dropout: float = 0.1  # on the pooled representation
  max_seq_len: int = 128  # pairs are truncated longest-first to fit
  seeds: int = 5  # fine-tuning seeds per task (median, range and interval reported)
  max_train_examples: int = 0  # 0: all
  max_eval_examples: int = 0  # per scored split; 0: all (a smaller number is for quick checks)
  eval_batch_size: int = 128  # examples per prediction batch
  # What the classifier reads: `objective` (the record's: [CLS] for MLM and prefix-LM, the last
  # token for CLM) or `mean` (the mean of the real tokens' final states, for every variant).
  readout: str = "objective"

  def validate(self) -> FinetuneConfig:
    for key in ("batch_size", "epochs", "seeds", "max_seq_len", "eval_batch_size"):
      value = getattr(self, key)
      if not isinstance(value, int) or value <= 0:
        raise ConfigError(f"config.finetune.{key}={value}: must be a positive integer")
    if not (self.lr > 0 and math.isfinite(self.lr)):
      raise ConfigError(f"config.finetune.lr={self.lr}: must be a positive finite number")
    for key in ("warmup_frac", "dropout"):
      if not 0.0 <= getattr(self, key) < 1.0:
        raise ConfigError(f"config.finetune.{key}={getattr(self, key)}: must be in [0, 1)")
    if self.weight_decay < 0:
      raise ConfigError(f"config.finetune.weight_decay={self.weight_decay}: must be >= 0")
    for key in ("max_train_examples", "max_eval_examples"):
      if getattr(self, key) < 0:
        raise ConfigError(f"config.finetune.{key}={getattr(self, key)}: must be >= 0")
    if self.readout not in ("objective", "mean"):
      raise ConfigError(f"config.finetune.readout={self.readout!r}: allowed: objective, mean")
    return self
