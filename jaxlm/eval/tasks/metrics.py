"""GLUE metrics, per-task scores, and prediction files from which anyone can recompute them.

Every value is a float on the 0-100 scale, as on the GLUE leaderboard (accuracy 84.2, not
0.842; Matthews and Pearson/Spearman correlations times 100). The formulas are scikit-learn's
and scipy's, so numbers compare with other papers' code:

  cola                     mcc       (sklearn matthews_corrcoef)
  sst2, mnli, qnli, rte, wnli  accuracy  (sklearn accuracy_score)
  mrpc, qqp                f1, accuracy  (F1 of the positive class 1: equivalent / duplicate)
  stsb                     pearson, spearman  (scipy.stats)

A task's single score (`glue_score`) follows the GLUE paper: the mean of its metrics, e.g. MRPC
(F1 + accuracy) / 2 and STS-B (Pearson + Spearman) / 2. MNLI's matched and mismatched dev sets
are separate splits, each scored on its own.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
from etils import epath
from scipy import stats
from sklearn import metrics as skm

from jaxlm import storage
from jaxlm.errors import DataError
from jaxlm.eval import tasks


def _task(task):
  return tasks.get(task, "finetune")


PREDICTIONS_HEADER = ("index", "prediction", "label")


def _class_ids(predictions) -> np.ndarray:
  predictions = np.asarray(predictions)
  if predictions.ndim == 2:  # logits or probabilities, one row per example
    predictions = predictions.argmax(-1)
  return predictions.astype(np.int64)


def _scores(predictions) -> np.ndarray:
  predictions = np.asarray(predictions, np.float64)
  if predictions.ndim == 2 and predictions.shape[1] == 1:  # a (N, 1) regression head
    predictions = predictions[:, 0]
  return predictions


def compute_metrics(task, predictions, labels) -> dict[str, float]:
  """{metric: value on the 0-100 scale} for `task.metrics` (see the module docstring).

  `predictions` are class ids, or (N, num_labels) logits whose argmax is taken; for STS-B, scores
  of shape (N,) or (N, 1). `labels` are ids (floats for STS-B), e.g. `Examples.labels`. A
  correlation that is undefined (constant predictions) is NaN.
  """
  task = _task(task)
  labels = np.asarray(labels)
  predictions = _scores(predictions) if task.is_regression else _class_ids(predictions)
  if predictions.ndim != 1 or predictions.shape != labels.shape or not len(labels):
    raise ValueError(f"{task.name}: predictions of shape {predictions.shape} do not match "
                     f"labels of shape {labels.shape} (need one per example, at least one)")
  if task.is_regression:
    labels = labels.astype(np.float64)
    with warnings.catch_warnings():
      # Constant predictions (an untrained head) give NaN; the warning would repeat every eval.
      warnings.simplefilter("ignore", stats.ConstantInputWarning)
      return {"pearson": 100 * float(stats.pearsonr(predictions, labels)[0]),
              "spearman": 100 * float(stats.spearmanr(predictions, labels)[0])}
  if labels.min() < 0 or labels.max() >= task.num_labels:
    raise ValueError(f"{task.name}: labels must be ids in [0, {task.num_labels}), got "
                     f"{labels.min()}..{labels.max()} (test splits carry no labels: -1)")
  result = {}
  for name in task.metrics:
    if name == "mcc":
      result[name] = 100 * float(skm.matthews_corrcoef(labels, predictions))
    elif name == "accuracy":
      result[name] = 100 * float(skm.accuracy_score(labels, predictions))
    elif name == "f1":
      # zero_division=0: a model that never predicts the positive class scores 0, silently.
      result[name] = 100 * float(skm.f1_score(labels, predictions, pos_label=1, zero_division=0))
    else:
      raise ValueError(f"{task.name}: unknown metric {name!r}")
  return result


def primary_metric(task) -> str:
  """The name of the task's single score (`glue_score`): its metric ("mcc", "accuracy"), or for
  two metrics their mean, named e.g. "f1_accuracy_mean" (MRPC, QQP), "pearson_spearman_mean"."""
  task = _task(task)
  return task.metrics[0] if len(task.metrics) == 1 else "_".join(task.metrics) + "_mean"


def glue_score(task, metrics: dict[str, float]) -> float:
  """The task's score for GLUE averages, 0-100: the mean of its metrics (GLUE convention)."""
  task = _task(task)
  missing = [name for name in task.metrics if name not in metrics]
  if missing:
    raise ValueError(f"{task.name}: metrics lack {', '.join(missing)}; have "
                     f"{', '.join(metrics) or 'none'}")
  return float(np.mean([metrics[name] for name in task.metrics]))


def _format_label(value) -> str:
  # Labels are float32 (Examples.labels): the shortest text that reads back to the same float32,
  # "3.8" rather than 3.799999952316284.
  return np.format_float_positional(np.float32(value), unique=True, trim="-")


def write_predictions(path: str | os.PathLike, indices, predictions, labels, *,
                      task) -> epath.Path:
  """Writes a TSV with header `index<TAB>prediction<TAB>label`, one row per example.

  Classification: predictions are class ids (or logits), written, like labels, as the task's
  label strings (`entailment`, `0`/`1`). STS-B: scores and labels as decimal floats. A label of
  -1 (NaN for STS-B: no label) is written empty. `read_predictions` reads back the same values, so
  `compute_metrics` on them gives the same numbers.
  """
  task, path = _task(task), storage.path(path)
  indices = np.asarray(indices, np.int64)
  labels = np.asarray(labels)
  predictions = _scores(predictions) if task.is_regression else _class_ids(predictions)
  if not indices.shape == predictions.shape == labels.shape or indices.ndim != 1:
    raise ValueError(f"{task.name}: indices {indices.shape}, predictions "
                     f"{predictions.shape} and labels {labels.shape} must be equal 1-D shapes")

  def text(value, is_label: bool) -> str:
    if task.is_regression and is_label:
      return "" if math.isnan(value) else _format_label(value)
    if task.is_regression:
      return repr(value)  # float64's shortest round-trip text: scores read back exactly
    if is_label and value == -1:
      return ""
    if not 0 <= value < task.num_labels:
      raise ValueError(f"{task.name}: class id {value} outside [0, {task.num_labels})")
    return task.label_names[int(value)]

  rows = ["\t".join(PREDICTIONS_HEADER)] + [
    f"{i}\t{text(p, False)}\t{text(y, True)}"
    for i, p, y in zip(indices.tolist(), predictions.tolist(), labels.tolist())]
  storage.write_atomic(path, "\n".join(rows) + "\n")
  return path


def read_predictions(path: str | os.PathLike, *,
                     task) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(indices int64, predictions, labels) from a `write_predictions` file: class ids as int64, or
  for STS-B float64 predictions and float32 labels (as `Examples.labels`); an empty label reads as
  -1 (NaN for STS-B)."""
  task, path = _task(task), storage.path(path)
  if not path.is_file():
    raise DataError(f"{task.name}: predictions file {path} does not exist")
  lines = path.read_text(encoding="utf-8").split("\n")
  if tuple(lines[0].split("\t")) != PREDICTIONS_HEADER:
    raise DataError(f"{path}: not a predictions file; expected the header "
                    f"{' '.join(PREDICTIONS_HEADER)} (tab-separated)")
  ids = {name: i for i, name in enumerate(task.label_names)}

  def value(text: str, lineno: int, is_label: bool):
    if is_label and not text:
      return math.nan if task.is_regression else -1
    try:
      return float(text) if task.is_regression else ids[text]
    except (KeyError, ValueError):
      raise DataError(f"{path}: line {lineno}: {text!r} is not a {task.name} "
                      f"{'label' if is_label else 'prediction'}") from None

  indices, predictions, labels = [], [], []
  for lineno, line in enumerate(lines[1:], 2):
    if not line:
      continue
    fields = line.split("\t")
    if len(fields) != 3:
      raise DataError(f"{path}: line {lineno}: {len(fields)} fields, expected 3")
    indices.append(int(fields[0]))
    predictions.append(value(fields[1], lineno, False))
    labels.append(value(fields[2], lineno, True))
  if task.is_regression:
    return (np.asarray(indices, np.int64), np.asarray(predictions, np.float64),
            np.asarray(labels, np.float32))
  return (np.asarray(indices, np.int64), np.asarray(predictions, np.int64),
          np.asarray(labels, np.int64))
