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
  metrics: tuple[str, ...]  # keys of jaxlm.eval.tasks.metrics.compute_metrics; the score is their mean
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
  """A task scored from a pre-trained model without training (`jaxlm eval --task NAME`, and
  every study's zero-shot section). Its items fall into named groups (BLiMP: paradigms, shown
  by phenomenon); `sample` items per group is a fixed subsample, the same for every model.

  `evaluate` returns a JSON-able dict with at least `overall` (0-100), `interval` ([low, high],
  95% over items), `correct` (per item 0, ½ or 1, for paired differences), `items`, `groups`
  ({group: accuracy}) and `group_intervals`; and `references` ({name: {overall, correct,
  groups}}): models that need no training, fitted on `train_ids`, the studied run's own
  pre-training tokens, when given. `render` gives the report's markdown for one result per
  system (system name -> result).

  Optional: `subset(result, sample, subsample, groups=())`, which gives `evaluate(sample=
  subsample)`'s "items", "overall", "interval" and each reference's "overall" from `result`
  (the same model at `sample`), or None when `result` lacks some items; with it a learning
  curve's last point reuses the study's scores instead of scoring again (BLiMP, Zorro)."""

  kind: Literal["zero_shot"]
  name: str

  def check(self, sample: int, groups: tuple[str, ...] = ()) -> None:
    """A one-line ConfigError for options the task cannot take, before any model loads."""

  def evaluate(self, model, *, sample: int, groups: tuple[str, ...] = (),
               train_ids: np.ndarray | None = None, progress: bool = False) -> dict:
    """Scores `model` (a jaxlm.api.Pretrained), with a progress bar if `progress`."""

  def render(self, results: dict[str, dict]) -> list[str]:
    """Markdown: a table of the systems, the references and any published rows, and a note
    on how the task is scored."""
