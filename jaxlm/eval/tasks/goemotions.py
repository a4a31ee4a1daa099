"""`goemotions_sentiment`: the fine-tuning task that ships with jaxlm (Reddit comments, negative
or positive emotion; CC BY 4.0, see jaxlm/eval/data/goemotions_sentiment/SOURCES.md).

Splits are the dataset's official ones, after dropping ambiguous and neutral comments: train
(16,000 kept of them), validation (the official dev, 2,955) and test (2,933). `compare` reports
both labelled splits and picks nothing on test.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from functools import cache
from pathlib import Path

import numpy as np

from jaxlm.errors import ConfigError
from jaxlm.eval.tasks.base import Examples

DATA_DIR = Path(__file__).parents[1] / "data" / "goemotions_sentiment"
_FILES = {"train": "train.jsonl.gz", "validation": "dev.jsonl.gz", "test": "test.jsonl.gz"}


@cache
def _rows(split: str) -> tuple[tuple[str, ...], np.ndarray]:
  with gzip.open(DATA_DIR / _FILES[split], "rt", encoding="utf-8") as f:
    rows = [json.loads(line) for line in f]
  return tuple(r["text"] for r in rows), np.asarray([r["label"] for r in rows], np.int64)


@dataclasses.dataclass(frozen=True)
class ShippedTask:
  """A single-sentence classification task read from jsonl.gz files inside the package."""

  name: str
  label_names: tuple[str, ...]
  metrics: tuple[str, ...] = ("accuracy",)
  kind: str = "finetune"
  is_regression: bool = False
  needs_data_dir: bool = False
  eval_splits: tuple[str, ...] = ("validation", "test")

  @property
  def num_labels(self) -> int:
    return len(self.label_names)

  def read(self, split: str, data_dir: str | None = None, max_examples: int = 0) -> Examples:
    del data_dir  # shipped
    if split not in _FILES:
      raise ConfigError(f"{self.name}: unknown split {split!r}; allowed: {', '.join(_FILES)}")
    texts, labels = _rows(split)
    n = max_examples if max_examples > 0 else len(texts)
    return Examples(texts_a=list(texts[:n]), texts_b=None, labels=labels[:n].copy(),
                    indices=np.arange(min(n, len(texts)), dtype=np.int64))


TASK = ShippedTask("goemotions_sentiment", label_names=("negative", "positive"))
