"""jaxlm.eval.ngram: the add-alpha unigram and the interpolated bigram, against hand computations;
exact (order-independent) sentence sums."""

import math

import numpy as np
import pytest

from jaxlm.eval import ngram
from jaxlm.eval.ngram import BigramModel, UnigramModel


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
  monkeypatch.setattr(ngram, "_COUNT_BATCH_TOKENS", 2)
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
  with pytest.raises(ValueError, match="lam"):
    BigramModel.fit([0, 1], vocab_size=4, lam=1.0)
  with pytest.raises(ValueError, match=r"\[0, 4\)"):
    BigramModel.fit([0, 1], vocab_size=4).score([0, 4])


def test_the_same_tokens_in_another_order_tie_exactly_under_the_unigram():
  rng = np.random.default_rng(3)
  model = UnigramModel.fit([rng.integers(0, 1000, size=5000)], vocab_size=1000)
  ids = rng.integers(0, 1000, size=12)
  terms = model.log_probs[ids]
  # The example is one where summing in another order rounds differently, both for Python's
  # left-to-right sum and numpy's: a naive sum would break the tie one way or the other.
  assert sum(terms.tolist()) != sum(reversed(terms.tolist()))
  assert terms.sum() != terms[::-1].sum()
  assert model.score(ids) == model.score(ids[::-1])
  for seed in range(20):  # and any other order
    assert model.score(np.random.default_rng(seed).permutation(ids)) == model.score(ids)
  assert model.score(ids) == pytest.approx(terms.sum(), rel=1e-15)


# The bigram on the stream 0 1 0 2 0 1 (V=4, lam=0.5, alpha=1), by hand:
#   unigram counts [3, 2, 1, 0]: p_uni = (count + 1) / (6 + 4) = [.4, .3, .2, .1]
#   pairs (0,1) x2, (1,0), (0,2), (2,0): c(0) = 3, c(1) = c(2) = 1, c(3) = 0 (never seen)
#   p(0|0) = .5 * 0/3 + .5 * .4 = .2        p(1|0) = .5 * 2/3 + .5 * .3 = 29/60
#   p(2|0) = .5 * 1/3 + .5 * .2 = 4/15      p(3|0) = .5 * 0 + .5 * .1 = .05
#   p(0|1) = .5 * 1 + .5 * .4 = .7          p(w|3) = p_uni(w)
STREAM = [0, 1, 0, 2, 0, 1]


def _bigram():
  return BigramModel.fit(np.asarray(STREAM), vocab_size=4, lam=0.5)


def test_bigram_hand_computed_probabilities():
  model = _bigram()
  np.testing.assert_array_equal(model.pair_keys, [0 * 4 + 1, 0 * 4 + 2, 1 * 4 + 0, 2 * 4 + 0])
  np.testing.assert_array_equal(model.pair_counts, [2, 1, 1, 1])  # sparse: 4 keys, not 4 x 4
  np.testing.assert_array_equal(model.context_counts, [3, 1, 1, 0])
  np.testing.assert_allclose(np.exp(model.next_log_probs(0)), [0.2, 29 / 60, 4 / 15, 0.05])
  np.testing.assert_allclose(np.exp(model.next_log_probs(1)), [0.7, 0.15, 0.1, 0.05])
  np.testing.assert_allclose(np.exp(model.next_log_probs(3)), [0.4, 0.3, 0.2, 0.1])
  # The first token by the unigram, then each token given the one before.
  assert model.score([0, 1, 0]) == pytest.approx(math.log(0.4) + math.log(29 / 60)
                                                 + math.log(0.7))
  assert model.score([3, 0]) == pytest.approx(math.log(0.1) + math.log(0.4))
  assert model.score([]) == 0.0
  np.testing.assert_allclose(model.score_many([[2], [1, 0]]),
                             [math.log(0.2), math.log(0.3) + math.log(0.7)])


def test_bigram_conditionals_sum_to_one():
  rng = np.random.default_rng(1)
  stream = rng.integers(0, 40, size=3000) * rng.integers(0, 2, size=3000)  # many 0s, a skew
  model = BigramModel.fit(stream, vocab_size=50)  # ids 40..49 never occur: c(v) = 0
  for v in (0, 1, 7, 39, 45):
    assert np.exp(model.next_log_probs(v)).sum() == pytest.approx(1.0, abs=1e-12)
  for v in (0, 1):
    assert np.isfinite(model.next_log_probs(v)).all()
  assert model.pair_keys.size < 50 * 50


def test_bigram_distinguishes_word_order_but_ties_on_the_same_pairs():
  model = _bigram()
  assert model.score([0, 1, 0]) != model.score([0, 0, 1])
  assert model.score([0, 1, 0]) > model.score([1, 0, 0])  # 0 1 was seen twice; 1 0 0 never
  # The same first token and the same multiset of adjacent pairs: an exact tie.
  assert model.score([0, 1, 0, 2, 0]) == model.score([0, 2, 0, 1, 0])


def test_bigram_large_vocabulary_stays_sparse():
  model = BigramModel.fit(np.asarray([5, 40_000, 5, 7]), vocab_size=50_000)
  assert model.pair_keys.size == 3
  assert model.score([5, 40_000]) > model.score([5, 40_001])
