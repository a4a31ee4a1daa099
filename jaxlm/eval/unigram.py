"""A count-based unigram LM: the floor for zero-shot minimal-pair scores (BLiMP).

It knows token frequencies and nothing about order, so on BLiMP it mostly prefers the sentence
with fewer or more frequent tokens; a pre-trained model that does not beat it has learned little
grammar. Fit it on the pre-training text tokenized with the run's tokenizer, then score each
sentence's token ids:

  floor = UnigramModel.fit(token_id_sequences, vocab_size=tokenizer.vocab_size)
  floor.score(ids_good) > floor.score(ids_bad)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

# Token ids are counted in batches of about this many, so fitting a large corpus given as many
# short sequences costs one bincount per batch instead of one per sequence.
_COUNT_BATCH_TOKENS = 1 << 20


def _ids(token_ids, vocab_size: int) -> np.ndarray:
  ids = np.asarray(token_ids)
  if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
    raise ValueError(f"token ids must be a 1-D sequence of integers, got shape {ids.shape} "
                     f"dtype {ids.dtype}")
  ids = ids.astype(np.int64, copy=False)
  if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
    raise ValueError(f"token ids must be in [0, {vocab_size}), got {ids.min()}..{ids.max()}")
  return ids


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
    """Sum of the tokens' log-probabilities (natural log): the sentence's log-likelihood."""
    return float(self.log_probs[_ids(token_ids, self.vocab_size)].sum())

  def score_many(self, token_id_sequences: Iterable) -> np.ndarray:
    """[n_sequences] float64 scores, one per sequence (see `score`)."""
    return np.array([self.score(ids) for ids in token_id_sequences], np.float64)
