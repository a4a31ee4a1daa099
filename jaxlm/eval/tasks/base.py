"""What an evaluation task is: a fine-tuning task (labelled splits a classifier trains and is
scored on) or a zero-shot task (scored straight from a pre-trained model's sentence scores).

`jaxlm.eval.tasks.TASKS` holds one record per task; `finetune` and `compare` read only these
attributes, so a new task is one file defining a record plus one registry line.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol

import numpy as np


@dataclasses.dataclass
class Examples:
  """One split of a task. `labels` are int64 class ids, or float32 scores for regression; -1 marks
  an unlabelled example (TFDS test splits)."""

  texts_a: list[str]
  texts_b: list[str] | None  # None for single-sentence tasks
  labels: np.ndarray
  indices: np.ndarray  # int64 row numbers in the source (0-based, header excluded)

  def __len__(self) -> int:
    return len(self.texts_a)


class FinetuneTask(Protocol):
  """A classification (or regression) task with a training split."""

  kind: Literal["finetune"]
  name: str
  label_names: tuple[str, ...]  # as written in the source, in id order; () for regression
  metrics: tuple[str, ...]  # keys of jaxlm.eval.metrics.compute_metrics; the score is their mean
  is_regression: bool
  needs_data_dir: bool  # True: its files come from the user (GLUE); False: shipped

  @property
  def num_labels(self) -> int: ...

  @property
  def eval_splits(self) -> tuple[str, ...]:
    """The labelled splits scored after fine-tuning, development split first."""

  def read(self, split: str, data_dir: str | None = None, max_examples: int = 0) -> Examples:
    """One split; `max_examples` > 0 keeps the first N."""


class ZeroShotTask(Protocol):
  """A task scored from a pre-trained model without training (`jaxlm eval --task NAME`)."""

  kind: Literal["zero_shot"]
  name: str

  def evaluate(self, loaded, *, train_texts: list[str] | None = None, **options) -> dict:
    """Scores `loaded` (a jaxlm.api.Loaded); `train_texts` gives the pre-training text for a
    floor."""
