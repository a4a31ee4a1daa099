"""jaxlm.eval.unigram: add-alpha unigram log-probabilities and sentence scores."""

import math

import numpy as np
import pytest

from jaxlm.eval import unigram
from jaxlm.eval.unigram import UnigramModel


def test_probabilities_sum_to_one():
  rng = np.random.default_rng(0)
  model = UnigramModel.fit([rng.integers(0, 50, size=n) for n in (5, 0, 17, 3)], vocab_size=64,
                           alpha=0.5)
  assert model.log_probs.shape == (64,)
  assert np.exp(model.log_probs).sum() == pytest.approx(1.0, abs=1e-12)
  assert np.isfinite(model.log_probs).all()  # unseen ids 50..63 included


def test_hand_computed_scores():
  # counts [1, 2, 1, 0]; with alpha=1: p = (count + 1) / (4 + 4) = [2, 3, 2, 1] / 8.
  model = UnigramModel.fit([[0, 1, 1], np.array([2])], vocab_size=4, alpha=1.0)
  np.testing.assert_array_equal(model.counts, [1, 2, 1, 0])
  np.testing.assert_allclose(np.exp(model.log_probs), [2 / 8, 3 / 8, 2 / 8, 1 / 8])
  assert model.score([1, 3, 1]) == pytest.approx(2 * math.log(3 / 8) + math.log(1 / 8))
  assert model.score([]) == 0.0
  np.testing.assert_allclose(model.score_many([[0], [3, 3]]),
                             [math.log(2 / 8), 2 * math.log(1 / 8)])


def test_counting_in_batches_gives_the_same_counts(monkeypatch):
  sequences = [[0, 1, 1], [2], [3, 3, 0], [1]]
  whole = UnigramModel.fit(sequences, vocab_size=5)
  monkeypatch.setattr(unigram, "_COUNT_BATCH_TOKENS", 2)
  batched = UnigramModel.fit(iter(sequences), vocab_size=5)  # any iterable, read once
  np.testing.assert_array_equal(batched.counts, whole.counts)
  np.testing.assert_array_equal(batched.log_probs, whole.log_probs)


def test_rejects_bad_ids_and_alpha():
  with pytest.raises(ValueError, match=r"\[0, 4\)"):
    UnigramModel.fit([[0, 4]], vocab_size=4)
  with pytest.raises(ValueError, match="alpha"):
    UnigramModel.fit([[0]], vocab_size=4, alpha=0.0)
  with pytest.raises(ValueError, match="integers"):
    UnigramModel.fit([[0.5]], vocab_size=4)
  with pytest.raises(ValueError):
    UnigramModel.fit([[0]], vocab_size=4).score([-1])
