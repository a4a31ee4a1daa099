"""Sentence scores from a loaded model, for zero-shot minimal pairs (BLiMP).

Every objective scores a sentence by a sum of token log-probabilities, in nats:
- CLM: sum_i log p(w_i | [SEP] w_<i); [SEP] stands where the previous document ended, as in
  the packed pre-training rows.
- prefix-LM: the same causal continuation with the one-token prefix [SEP] (prefix_len=1).
- MLM: pseudo-log-likelihood (Salazar et al., ACL 2020) in the word-level variant of Kauf &
  Ivanova (2023, "PLL-word-l2r"): token i is predicted with itself and the rest of its word
  masked, so a word split into several tokens is not scored from its own pieces.
Rows are grouped by length (no padding ever enters attention) and padded in the batch dimension
to a fixed size, so each length compiles once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from jaxlm import objectives
from jaxlm.data.special_tokens import MASK, SEP

ROWS = 64  # rows per forward call


def _log_softmax(logits_NxV: np.ndarray) -> np.ndarray:
  shifted = logits_NxV - logits_NxV.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _forward(loaded, rows_NxT: np.ndarray, prefix_len: int | None) -> np.ndarray:
  """Logits for N rows of one length, ROWS at a time (the last call padded with copies)."""
  out = []
  for start in range(0, len(rows_NxT), ROWS):
    chunk = rows_NxT[start:start + ROWS]
    padded = np.concatenate([chunk, np.repeat(chunk[-1:], ROWS - len(chunk), 0)])
    out.append(loaded.logits(padded, prefix_len)[:len(chunk)])
  return np.concatenate(out)


def encode(loaded, sentences: Sequence[str]) -> list[tuple[list[int], list[int]]]:
  """(token ids, word index of each token) per sentence, without special tokens."""
  encodings = loaded.tokenizer.encode_batch(list(sentences), add_special_tokens=False)
  return [(e.ids, [w if w is not None else -1 for w in e.word_ids]) for e in encodings]


def _vocab(loaded) -> int:
  return min(loaded.tokenizer.get_vocab_size(), loaded.config.model.vocab_size)


def causal_scores(loaded, sentences: Sequence[str], prefix_len: int | None = None) -> np.ndarray:
  """sum_i log p(w_i | [SEP] w_<i) per sentence."""
  sep = loaded.tokenizer.token_to_id(SEP)
  encoded = encode(loaded, sentences)
  scores = np.zeros(len(sentences))
  by_length: dict[int, list[int]] = defaultdict(list)
  for i, (ids, _) in enumerate(encoded):
    by_length[len(ids)].append(i)
  V = _vocab(loaded)
  for length, members in sorted(by_length.items()):
    if length == 0:
      continue
    rows = np.asarray([[sep] + encoded[i][0] for i in members], np.int32)
    logp = _log_softmax(_forward(loaded, rows, prefix_len)[:, :-1, :V].astype(np.float64))
    targets = rows[:, 1:]
    scores[members] = np.take_along_axis(logp, targets[..., None], -1)[..., 0].sum(-1)
  return scores


def pll_scores(loaded, sentences: Sequence[str]) -> np.ndarray:
  """Word-level pseudo-log-likelihood per sentence (one masked row per token)."""
  mask = loaded.tokenizer.token_to_id(MASK)
  encoded = encode(loaded, sentences)
  rows: dict[int, list[tuple[int, int, list[int]]]] = defaultdict(list)  # length -> (sent, pos, row)
  for s, (ids, words) in enumerate(encoded):
    for i in range(len(ids)):
      row = [mask if j >= i and words[j] == words[i] and words[i] >= 0 or j == i else t
             for j, t in enumerate(ids)]
      rows[len(ids)].append((s, i, row))
  scores = np.zeros(len(sentences))
  V = _vocab(loaded)
  for length, items in sorted(rows.items()):
    batch = np.asarray([r for _, _, r in items], np.int32)
    logits = _forward(loaded, batch, None)
    for n, (s, i, _) in enumerate(items):
      scores[s] += _log_softmax(logits[n, i, :V].astype(np.float64)[None])[0, encoded[s][0][i]]
  return scores


def sentence_scores(loaded, sentences: Sequence[str]) -> np.ndarray:
  """The score the objective's record says to use: causal for models that generate (prefix-LM
  with a one-token prefix), PLL for masked LMs."""
  record = objectives.get(loaded.config.objective)
  if record.generates:
    return causal_scores(loaded, sentences, 1 if record.attention == "prefix" else None)
  return pll_scores(loaded, sentences)
