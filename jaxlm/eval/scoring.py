"""Sentence scores from a loaded model, for zero-shot minimal pairs (BLiMP).

Every objective scores a sentence by a sum of token log-probabilities, in nats:
- CLM: sum_i log p(w_i | <s> w_<i), where <s> is the token a pre-training document opens with
  (`data.doc_start=cls`: [CLS], whose position learned to predict a document's first word).
  Runs made with `doc_start=none` condition on [SEP], where the previous document ended, as
  they always did (its next-token distribution was never trained: such scores mean less).
- prefix-LM: the same causal continuation with the one-token prefix <s> (prefix_len=1).
- MLM: pseudo-log-likelihood (Salazar et al., ACL 2020) in the word-level variant of Kauf &
  Ivanova (2023, "PLL-word-l2r"): token i is predicted with itself and the rest of its word
  masked, so a word split into several tokens is not scored from its own pieces.
- MNTP: the same pseudo-log-likelihood read one position earlier (its masked token i is
  predicted at i−1), after <s>.
Causal rows are right-padded to a multiple of BUCKET (exact: no real position attends to a later
one); PLL rows are grouped by exact length (attention is bidirectional, so no padding may enter
it). Every call has ROWS rows, so each length compiles once, and the log-softmax and the gather
of the scored tokens run on the device.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlm import objectives
from jaxlm.data.special_tokens import CLS, MASK, PAD, SEP

ROWS = 128  # rows per forward call
_SCORERS: dict[tuple, tuple] = {}  # (objective, vocab, ModelConfig) -> (graphdef, jitted scorer)
BUCKET = 8  # causal rows are right-padded to a multiple of this (exact: nothing attends ahead)


def _make_scorer(graphdef, objective_name: str, vocab: int):
  """jit(state, tokens_NxT, positions_NxK, targets_NxK, weights_NxK, prefix_len) -> [N] sums of
  log p(target | row) at the given positions: the log-softmax and the gather run on the device,
  so only N numbers come back, never N x T x V logits."""
  objective = objectives.get(objective_name)

  @jax.jit
  def score(state, tokens_NxT, positions_NxK, targets_NxK, weights_NxK, prefix_len_N):
    picked_NxKxV = objective.inference_logits(nnx.merge(graphdef, state), tokens_NxT,
                                              prefix_len_N, positions_NxK)
    logp_NxKxV = jax.nn.log_softmax(picked_NxKxV[..., :vocab].astype(jnp.float32), axis=-1)
    logp_NxK = jnp.take_along_axis(logp_NxKxV, targets_NxK[..., None], axis=-1)[..., 0]
    return jnp.sum(logp_NxK * weights_NxK, axis=-1)

  return score


def _score_rows(loaded, tokens_NxT, positions_NxK, targets_NxK, weights_NxK,
                prefix_len: int | None) -> np.ndarray:
  """[N] summed log-probabilities, ROWS rows per call (the last call padded with copies)."""
  graphdef, state = nnx.split(loaded.model)
  # Compiled once per model structure, not per model object: the checkpoints of one run (a
  # learning curve) and runs of one shape share their scorers.
  key = (loaded.config.objective, _vocab(loaded), loaded.config.model)
  cached = _SCORERS.get(key)
  if cached is None or cached[0] != graphdef:
    cached = _SCORERS[key] = (graphdef, _make_scorer(graphdef, loaded.config.objective,
                                                     _vocab(loaded)))
  score = cached[1]
  arrays = [np.asarray(a, dtype) for a, dtype in ((tokens_NxT, np.int32),
                                                  (positions_NxK, np.int32),
                                                  (targets_NxK, np.int32),
                                                  (weights_NxK, np.float32))]
  out = []
  for start in range(0, len(tokens_NxT), ROWS):
    chunk = [a[start:start + ROWS] for a in arrays]
    n = len(chunk[0])
    chunk = [np.concatenate([c, np.repeat(c[-1:], ROWS - n, 0)]) for c in chunk]
    prefix_N = np.full(ROWS, 0 if prefix_len is None else prefix_len, np.int32)
    out.append(np.asarray(score(state, *chunk, prefix_N))[:n])
  return np.concatenate(out).astype(np.float64)


def encode(loaded, sentences: Sequence[str]) -> list[tuple[list[int], list[int]]]:
  """(token ids, word index of each token) per sentence, without special tokens."""
  encodings = loaded.tokenizer.encode_batch(list(sentences), add_special_tokens=False)
  return [(e.ids, [w if w is not None else -1 for w in e.word_ids]) for e in encodings]


def _vocab(loaded) -> int:
  return min(loaded.tokenizer.get_vocab_size(), loaded.config.model.vocab_size)


def context_token(loaded) -> str:
  """The token a sentence is scored after: the one the run's documents open with."""
  return CLS if loaded.config.data.doc_start == "cls" else SEP


def causal_scores(loaded, sentences: Sequence[str], prefix_len: int | None = None) -> np.ndarray:
  """sum_i log p(w_i | <s> w_<i) per sentence (<s>: `context_token`)."""
  sep, pad = (loaded.tokenizer.token_to_id(t) for t in (context_token(loaded), PAD))
  encoded = encode(loaded, sentences)
  scores = np.zeros(len(sentences))
  by_length: dict[int, list[int]] = defaultdict(list)
  for i, (ids, _) in enumerate(encoded):
    if ids:
      by_length[-(-(len(ids) + 1) // BUCKET) * BUCKET].append(i)
  for length, members in sorted(by_length.items()):
    K = length - 1  # predicted positions 0..K-1 predict tokens 1..K
    tokens = np.full((len(members), length), pad, np.int32)
    weights = np.zeros((len(members), K), np.float32)
    for row, i in enumerate(members):
      ids = encoded[i][0]
      tokens[row, :len(ids) + 1] = [sep] + ids
      weights[row, :len(ids)] = 1.0
    positions = np.broadcast_to(np.arange(K), (len(members), K))
    scores[members] = _score_rows(loaded, tokens, positions, tokens[:, 1:], weights, prefix_len)
  return scores


def pll_scores(loaded, sentences: Sequence[str]) -> np.ndarray:
  """Word-level pseudo-log-likelihood per sentence (one masked row per token). For objectives
  that predict a masked token one position earlier (MNTP), every row opens with the token
  documents open with and token i is read at position i, i.e. one before its own."""
  mask = loaded.tokenizer.token_to_id(MASK)
  shifted = objectives.get(loaded.config.objective).predicts_next
  start = [loaded.tokenizer.token_to_id(context_token(loaded))] if shifted else []
  encoded = encode(loaded, sentences)
  rows: dict[int, list[tuple[int, int, list[int]]]] = defaultdict(list)  # length -> (sent, pos, row)
  for s, (ids, words) in enumerate(encoded):
    for i in range(len(ids)):
      row = start + [mask if j >= i and words[j] == words[i] and words[i] >= 0 or j == i else t
                     for j, t in enumerate(ids)]
      rows[len(row)].append((s, i, row))
  scores = np.zeros(len(sentences))
  for length, items in sorted(rows.items()):
    # No padding here: attention is bidirectional, so every row of a call has one length.
    sentence = np.asarray([s for s, _, _ in items])
    position = np.asarray([[i] for _, i, _ in items])
    target = np.asarray([[encoded[s][0][i]] for s, i, _ in items])
    logp = _score_rows(loaded, [r for _, _, r in items], position, target,
                       np.ones_like(position, np.float32), None)
    np.add.at(scores, sentence, logp)
  return scores


def sentence_scores(loaded, sentences: Sequence[str]) -> np.ndarray:
  """The score the objective's record says to use: causal for models that generate (prefix-LM
  with a one-token prefix), PLL for masked LMs."""
  record = objectives.get(loaded.config.objective)
  if record.generates:
    return causal_scores(loaded, sentences, 1 if record.attention == "prefix" else None)
  return pll_scores(loaded, sentences)
