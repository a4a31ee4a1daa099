"""Same-data references for a fine-tuning task: linear models that need no pre-training, fitted
on exactly the training examples the fine-tuned models see.

`bag_of_words` fits a logistic regression (Ridge for a regression task, STS-B) on token counts:
  words   scikit-learn's CountVectorizer word tokens (runs of two or more word characters),
          lowercased, vocabulary from the training split only;
  pieces  the run's own tokenizer pieces (`encode_batch(..., add_special_tokens=False)`), one
          column per id of the tokenizer's vocabulary.
A pair task's features are its two texts' counts side by side (one block of columns for text a,
one for text b), so a word in the premise and the same word in the hypothesis are different
features; no cross-text feature (word overlap) is added.

`fit_and_score` is the fitting protocol, shared with the frozen-feature probe (`probe.py`): the
regularisation strength is chosen by 5-fold cross-validation (stratified for classification,
shuffled with the given seed) on the training split alone, scored with the task's own metric;
the model is then refitted on the whole training split and each eval split is only predicted,
scored with `metrics.compute_metrics` / `metrics.glue_score` (0-100), with per-example 0/1
correctness for paired bootstraps (classification only). From PARALLEL_ROWS training rows the
cross-validation fits run in worker processes, one per core; each fit is the same either way.
The logistic regression's solver follows the features: Newton-Cholesky for dense ones (the
probe's hidden states, many more rows than columns: 3 iterations to the optimum on the main
job's probe, where L-BFGS took up to 650 and stopped up to 0.3 short in a coefficient at
C = 100), L-BFGS for sparse counts (thousands of columns, where a Newton step's Hessian is the
cost).
"""

from __future__ import annotations

import os

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from jaxlm.eval import tasks
from jaxlm.eval.tasks import metrics
from jaxlm.eval.tasks.base import Examples

FOLDS = 5
C_GRID = tuple(float(c) for c in 10.0 ** np.arange(-3, 2.01, 0.5))  # 0.001 ... 100
ALPHA_GRID = tuple(float(a) for a in 10.0 ** np.arange(-2, 3.01, 0.5))  # Ridge: 0.01 ... 1000
MAX_ITER = 5000
PARALLEL_ROWS = 1000  # training rows from which the fits run in worker processes (`_jobs`)


def _jobs(rows: int, fits: int) -> int:
  """Processes for the cross-validation fits: one per usable core once the training split has
  PARALLEL_ROWS rows (fits of a few hundred ms each; the worker processes start once, in a few
  seconds, and serve every later search), else the calling process alone."""
  if rows < PARALLEL_ROWS:
    return 1
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return max(1, min(cores or 1, fits))


def _task_score(y_true, y_pred, task) -> float:
  return metrics.glue_score(task, metrics.compute_metrics(task, y_pred, y_true))


def _check_labels(task, labels: np.ndarray, where: str) -> np.ndarray:
  labels = np.asarray(labels)
  bad = np.isnan(labels) if task.is_regression else labels < 0
  if bad.any():
    raise ValueError(f"{task.name}: {where} has {int(bad.sum())} unlabelled examples; a "
                     "reference is fitted and scored on labelled splits only")
  return labels.astype(np.float64) if task.is_regression else labels.astype(np.int64)


def fit_and_score(x_train, y_train, x_evals: dict, y_evals: dict, task, seed: int = 0, *,
                  standardise: bool = False) -> dict[str, dict]:
  """Fits on the training rows with the regularisation chosen by cross-validation on them alone,
  then scores each eval split. `x_*`: (N, F) arrays or sparse matrices; `standardise`: scale
  features to zero mean and unit variance (fitted inside each fold, then on the whole training
  split). Returns {split: {"score", "metrics", "correct" (classification), "C" or "alpha",
  "train_examples"}}."""
  task = tasks.get(task, "finetune")
  y_train = _check_labels(task, y_train, "the training split")
  y_evals = {split: _check_labels(task, y_evals[split], f"split {split!r}") for split in x_evals}
  if len(y_train) < FOLDS:
    raise ValueError(f"{task.name}: {len(y_train)} training examples; {FOLDS}-fold "
                     "cross-validation needs at least as many")
  if task.is_regression:
    estimator, name, values = Ridge(), "alpha", ALPHA_GRID
    folds = KFold(FOLDS, shuffle=True, random_state=seed)
  else:
    solver = "lbfgs" if sparse.issparse(x_train) else "newton-cholesky"
    estimator, name, values = (LogisticRegression(solver=solver, max_iter=MAX_ITER,
                                                  random_state=seed), "C", C_GRID)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
  key = name
  if standardise:
    estimator = make_pipeline(StandardScaler(), estimator)
    key = f"{estimator.steps[-1][0]}__{name}"
  search = GridSearchCV(estimator, {key: values}, cv=folds, refit=True,
                        n_jobs=_jobs(len(y_train), FOLDS * len(values)),
                        scoring=make_scorer(_task_score, task=task))
  # One BLAS thread: these fits are small (tens of features, or sparse counts), and OpenBLAS's
  # threads beside JAX's on a busy machine made each solver step ~100x slower. (joblib gives its
  # worker processes one each as well: cores // workers.)
  with threadpool_limits(limits=1, user_api="blas"):
    search.fit(x_train, y_train)
    predictions = {split: search.predict(x) for split, x in x_evals.items()}
  chosen = float(search.best_params_[key])
  results = {}
  for split, predicted in predictions.items():
    labels = y_evals[split]
    scores = metrics.compute_metrics(task, predicted, labels)
    entry = {"score": metrics.glue_score(task, scores), "metrics": scores, name: chosen,
             "train_examples": int(len(y_train))}
    if not task.is_regression:
      entry["correct"] = (np.asarray(predicted) == labels).astype(int).tolist()
    results[split] = entry
  return results


def piece_counts(tokenizer, texts: list[str]) -> sparse.csr_matrix:
  """(N, vocabulary size) counts of each text's tokenizer pieces, special tokens not added."""
  encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
  rows = np.concatenate([np.full(len(e.ids), i, np.int64) for i, e in enumerate(encodings)]
                        + [np.zeros(0, np.int64)])
  cols = np.concatenate([np.asarray(e.ids, np.int64) for e in encodings]
                        + [np.zeros(0, np.int64)])
  return sparse.coo_matrix((np.ones(len(rows), np.float64), (rows, cols)),
                           shape=(len(encodings), tokenizer.get_vocab_size())).tocsr()


def _text_fields(examples: Examples) -> list[list[str]]:
  return [examples.texts_a] + ([examples.texts_b] if examples.texts_b is not None else [])


def _word_features(train: Examples, evals: dict[str, Examples]):
  """Counts per text field, each field's vocabulary learnt from the training split only."""
  blocks_train, blocks_evals = [], {split: [] for split in evals}
  for field, texts in enumerate(_text_fields(train)):
    vectorizer = CountVectorizer(lowercase=True, analyzer="word")
    blocks_train.append(vectorizer.fit_transform(texts))
    for split, ex in evals.items():
      blocks_evals[split].append(vectorizer.transform(_text_fields(ex)[field]))
  return (sparse.hstack(blocks_train).tocsr(),
          {split: sparse.hstack(b).tocsr() for split, b in blocks_evals.items()})


def _piece_features(tokenizer, train: Examples, evals: dict[str, Examples]):
  def counts(ex: Examples):
    return sparse.hstack([piece_counts(tokenizer, texts) for texts in _text_fields(ex)]).tocsr()

  return counts(train), {split: counts(ex) for split, ex in evals.items()}


def bag_of_words(task, train: Examples, evals: dict[str, Examples], *, tokenizer=None,
                 seed: int = 0) -> dict[str, dict]:
  """Same-data bag-of-words references (see the module docstring): {"words": {split: result},
  "pieces": {split: result}} ("pieces" only with a `tokenizer`, a `tokenizers.Tokenizer`), each
  result as `fit_and_score` gives it: {"score" (0-100, the task's score), "metrics", "correct"
  (per example 0/1, classification only), "C" (or "alpha" for Ridge), "train_examples"}."""
  task = tasks.get(task, "finetune")
  for split, ex in evals.items():
    if (ex.texts_b is None) != (train.texts_b is None):
      raise ValueError(f"{task.name}: split {split!r} and the training split differ in "
                       "whether examples are pairs")
  labels = {split: ex.labels for split, ex in evals.items()}
  x_train, x_evals = _word_features(train, evals)
  results = {"words": fit_and_score(x_train, train.labels, x_evals, labels, task, seed)}
  if tokenizer is not None:
    x_train, x_evals = _piece_features(tokenizer, train, evals)
    results["pieces"] = fit_and_score(x_train, train.labels, x_evals, labels, task, seed)
  return results
