"""Context-free baselines for masked-token accuracy, computed exactly on the held-out rows.

An MLM that has learned only token frequencies (the "unigram plateau" small MLMs sit on before
they use context) predicts the same token everywhere. Two such predictors bound what that
plateau reaches, and `jaxlm compare` prints both beside MLM's held-out accuracy:

- `unigram`: always the most frequent token of the training rows;
- `row_mode`: for each row, the row's own most frequent token (it peeks at the row's bag of
  words, so it is the stronger of the two and the one the CPU default must double).

Positions are masked uniformly among eligible tokens, so the expected accuracy of a constant
guess in a row is the share of the row's eligible tokens equal to it; the numbers here are
those expectations (token-weighted over rows), with no sampling noise.
"""

from __future__ import annotations

import numpy as np

from jaxlm.data.packing import PackedRows


def _eligible(rows: PackedRows, special_ids) -> np.ndarray:
  return (rows.segment_ids > 0) & ~np.isin(rows.tokens, np.asarray(special_ids))


def unigram_accuracy(train: PackedRows, heldout: PackedRows, special_ids) -> float:
  """Accuracy of always predicting the training rows' most frequent eligible token."""
  train_ids = train.tokens[_eligible(train, special_ids)]
  heldout_ids = heldout.tokens[_eligible(heldout, special_ids)]
  if not heldout_ids.size:
    raise ValueError("no eligible held-out tokens")
  top = np.bincount(train_ids).argmax()
  return float(np.mean(heldout_ids == top))


def row_mode_accuracy(heldout: PackedRows, special_ids) -> float:
  """Accuracy of predicting, in every row, that row's most frequent eligible token."""
  eligible = _eligible(heldout, special_ids)
  hits = total = 0
  for tokens, keep in zip(heldout.tokens, eligible):
    ids = tokens[keep]
    if ids.size:
      hits += int(np.bincount(ids).max())
      total += ids.size
  if not total:
    raise ValueError("no eligible held-out tokens")
  return hits / total
