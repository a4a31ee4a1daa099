"""The context-free baselines of masked-token accuracy, against hand computations."""

import numpy as np

from jaxlm.data.packing import PackedRows
from jaxlm.eval import mlm_baseline

SPECIAL = (0, 3)  # pad, sep


def _rows(tokens):
  tokens = np.asarray(tokens, np.int32)
  return PackedRows(tokens=tokens, segment_ids=(tokens != 0).astype(np.int32),
                    positions=np.zeros_like(tokens))


def test_row_mode_counts_each_rows_own_most_frequent_token():
  held = _rows([[5, 5, 6, 3, 0], [7, 8, 9, 9, 9]])
  # Row 1: eligible 5 5 6 (mode 5, 2 of 3); row 2: 7 8 9 9 9 (mode 9, 3 of 5): 5 of 8.
  assert mlm_baseline.row_mode_accuracy(held, SPECIAL) == 5 / 8


def test_unigram_predicts_the_training_texts_most_frequent_token():
  train = _rows([[6, 6, 6, 5, 3], [6, 5, 0, 0, 0]])
  held = _rows([[5, 5, 6, 3, 0], [7, 8, 9, 9, 9]])
  assert mlm_baseline.unigram_accuracy(train, held, SPECIAL) == 1 / 8  # one 6 in 8 tokens
