"""Count-based n-gram LMs: references for zero-shot minimal-pair scores (BLiMP).

They need no training: fit them on the run's own pre-training tokens (the run's tokenizer), then
score each sentence's token ids. A unigram knows token frequencies and nothing about order; a
bigram knows which token follows which. Neither is a floor: summed log-probabilities prefer
shorter sentences, so a pair's length alone often decides what they choose.

  uni = UnigramModel.fit([train_ids], vocab_size=tokenizer.get_vocab_size())
  bi = BigramModel.fit(train_ids, vocab_size=tokenizer.get_vocab_size())
  uni.score(ids_good) > uni.score(ids_bad)

Sentence scores are exact sums (math.fsum: the correctly rounded sum of the terms, whatever their
order), so a unigram gives two orderings of the same tokens exactly the same score: a tie.
This module imports nothing from jaxlm (a leaf; tests/test_architecture.py).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import numpy as np

# Token ids are counted in batches of about this many, so fitting a large corpus given as many
# short sequences costs one bincount per batch instead of one per sequence.
_COUNT_BATCH_TOKENS = 1 << 20

# The bigram's weight on the bigram relative frequency (Jelinek-Mercer), fixed, never tuned on
# an evaluation. 0.8 gives the lowest held-out per-token perplexity of pre-training text for a
# bigram of about 1M tokens (compare/tiny's budget) under its V=2048 BPE: fitted on 1.02M tokens
# of 12 shipped books and scored on 3 others, weights 0.5 / 0.6 / 0.7 / 0.8 / 0.9 / 0.95 give
# 166 / 155 / 149 / 146.5 / 152 / 163 (an audit of compare/tiny, issue 24,
# found the same on the run's own tokens: 136 / 114 / 119 at 0.5 / 0.8 / 0.95, with BLiMP
# within about a point across them). Much larger corpora would favour a larger weight.
BIGRAM_WEIGHT = 0.8


def _ids(token_ids, vocab_size: int) -> np.ndarray:
  ids = np.asarray(token_ids)
  if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
    raise ValueError(f"token ids must be a 1-D sequence of integers, got shape {ids.shape} "
                     f"dtype {ids.dtype}")
  ids = ids.astype(np.int64, copy=False)
  if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
    raise ValueError(f"token ids must be in [0, {vocab_size}), got {ids.min()}..{ids.max()}")
  return ids


def exact_sum(terms: np.ndarray) -> float:
  """The correctly rounded sum of float terms: the same for any order of the same terms."""
  return math.fsum(np.asarray(terms, np.float64).tolist())


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: it holds arrays
class UnigramModel:
  counts: np.ndarray  # [vocab_size] int64, occurrences of each id in the fitting text
  log_probs: np.ndarray  # [vocab_size] float64, natural-log add-alpha probabilities
  alpha: float

  @property
  def vocab_size(self) -> int:
    return self.log_probs.shape[0]

  @classmethod
  def fit(cls, token_id_sequences: Iterable, vocab_size: int,
          alpha: float = 1.0) -> UnigramModel:
    """Add-alpha smoothed unigram log-probabilities from sequences of ids in [0, vocab_size).

    p(t) = (count(t) + alpha) / (n_tokens + alpha * vocab_size). alpha > 0 keeps every id
    (unseen ones, special tokens) at a finite log-probability, so every sentence has a score.
    """
    if vocab_size <= 0:
      raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    if not alpha > 0:
      raise ValueError(f"alpha must be > 0 so unseen tokens get a finite score, got {alpha}")
    counts = np.zeros(vocab_size, np.int64)  # [vocab_size]
    batch: list[np.ndarray] = []
    batch_tokens = 0
    for sequence in token_id_sequences:
      ids = _ids(sequence, vocab_size)
      batch.append(ids)
      batch_tokens += ids.size
      if batch_tokens >= _COUNT_BATCH_TOKENS:
        counts += np.bincount(np.concatenate(batch), minlength=vocab_size)
        batch, batch_tokens = [], 0
    if batch:
      counts += np.bincount(np.concatenate(batch), minlength=vocab_size)
    smoothed = counts + alpha  # [vocab_size] float64
    log_probs = np.log(smoothed) - np.log(smoothed.sum())
    return cls(counts=counts, log_probs=log_probs, alpha=float(alpha))

  def score(self, token_ids) -> float:
    """Exact sum of the tokens' log-probabilities (natural log): the sentence's
    log-likelihood, identical for any order of the same tokens."""
    return exact_sum(self.log_probs[_ids(token_ids, self.vocab_size)])

  def score_many(self, token_id_sequences: Iterable) -> np.ndarray:
    """[n_sequences] float64 scores, one per sequence (see `score`)."""
    return np.array([self.score(ids) for ids in token_id_sequences], np.float64)


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: it holds arrays
class BigramModel:
  """An interpolated (Jelinek-Mercer) bigram of one token stream:

    p(w | v) = lam * c(v, w) / c(v) + (1 - lam) * p_unigram(w)   where c(v) > 0,
    p(w | v) = p_unigram(w)                                       where c(v) = 0,

  c(v, w) counting adjacent pairs of the stream and c(v) = sum_w c(v, w) (occurrences of v
  before the stream's last token), p_unigram the add-alpha UnigramModel of the same stream. A
  sentence's first token is scored by the unigram. The pair counts are sparse: the sorted keys
  v * vocab_size + w of the pairs seen, so memory grows with the text, not with vocab_size².
  """

  unigram: UnigramModel
  pair_keys: np.ndarray  # [n_pairs_seen] int64, sorted v * vocab_size + w
  pair_counts: np.ndarray  # [n_pairs_seen] int64, c(v, w) of each key
  context_counts: np.ndarray  # [vocab_size] int64, c(v)
  lam: float

  @property
  def vocab_size(self) -> int:
    return self.unigram.vocab_size

  @classmethod
  def fit(cls, token_ids, vocab_size: int, lam: float = BIGRAM_WEIGHT,
          alpha: float = 1.0) -> BigramModel:
    """Counts of one id sequence in [0, vocab_size) (pre-training text as one stream: its
    document boundaries are not marked, so pairs across them count like any other)."""
    if not 0 <= lam < 1:
      raise ValueError(f"lam must be in [0, 1) so unseen pairs keep a finite score, got {lam}")
    ids = _ids(token_ids, vocab_size)
    unigram = UnigramModel.fit([ids], vocab_size, alpha)
    pair_keys, pair_counts = np.unique(ids[:-1] * vocab_size + ids[1:], return_counts=True)
    context_counts = np.bincount(ids[:-1], minlength=vocab_size).astype(np.int64)
    return cls(unigram=unigram, pair_keys=pair_keys.astype(np.int64),
               pair_counts=pair_counts.astype(np.int64), context_counts=context_counts,
               lam=float(lam))

  def pair_count(self, contexts, tokens) -> np.ndarray:
    """c(v, w) for each (contexts[i], tokens[i]), int64, by binary search of the sorted keys."""
    keys = (np.asarray(contexts, np.int64) * self.vocab_size
            + np.asarray(tokens, np.int64))  # [n]
    if not self.pair_keys.size:
      return np.zeros(keys.shape, np.int64)
    at = np.minimum(np.searchsorted(self.pair_keys, keys), self.pair_keys.size - 1)
    return np.where(self.pair_keys[at] == keys, self.pair_counts[at], 0)

  def log_probs(self, contexts, tokens) -> np.ndarray:
    """[n] float64 log p(tokens[i] | contexts[i]) (natural log)."""
    v = _ids(contexts, self.vocab_size)
    w = _ids(tokens, self.vocab_size)
    if v.shape != w.shape:
      raise ValueError(f"contexts and tokens differ in length: {v.size} and {w.size}")
    unigram = np.exp(self.unigram.log_probs[w])  # [n]
    c_v = self.context_counts[v]  # [n]
    seen = c_v > 0
    relative = self.pair_count(v, w) / np.maximum(c_v, 1)  # [n] c(v, w) / c(v)
    return np.log(np.where(seen, self.lam * relative + (1 - self.lam) * unigram, unigram))

  def next_log_probs(self, context: int) -> np.ndarray:
    """[vocab_size] log p(w | context) for every w: one conditional distribution."""
    everything = np.arange(self.vocab_size)
    return self.log_probs(np.full_like(everything, context), everything)

  def score(self, token_ids) -> float:
    """Exact sum of log p(first token) + sum_i log p(w_i | w_{i-1}): the sentence's
    log-likelihood (natural log)."""
    ids = _ids(token_ids, self.vocab_size)
    if not ids.size:
      return 0.0
    return exact_sum(np.concatenate([self.unigram.log_probs[ids[:1]],
                                     self.log_probs(ids[:-1], ids[1:])]))

  def score_many(self, token_id_sequences: Iterable) -> np.ndarray:
    """[n_sequences] float64 scores, one per sequence (see `score`)."""
    return np.array([self.score(ids) for ids in token_id_sequences], np.float64)
