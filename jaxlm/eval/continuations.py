"""Log-likelihoods of continuations after a visible context, with the greedy flag the
lm-evaluation-harness asks for (`jaxlm.eval.lm_eval_model`): the two scores of the BLiMP scorer
(`scoring`), extended to a context that is read but not scored and to texts longer than the
model.

An `Item` is a token sequence (context, then continuation), its word indices and where its
scored tokens start.
- causal (models that generate): sum_i log p(w_i | <s> w_<i) over the scored tokens, <s> the
  token documents open with (`scoring.context_token`); prefix-LM and hybrid with the one-token
  prefix, as the scorer reads them. The scored tokens are cut into windows of at most
  max_seq_len, each predicted from the max_seq_len tokens before its last: the harness's
  Hugging Face backend's left truncation, and its rolling windows for long texts.
- PLL (masked LMs): the scorer's word-level pseudo-log-likelihood of the scored tokens only, the
  context left unmasked; a text longer than the model is read in windows of max_seq_len tokens
  ending at each window's last scored token.
Rows run on the device through the scorer's `score_rows` (nearby lengths padded to one shape
under a segment mask, `rows` per call); the log-softmax, the gather of the scored tokens and
the argmax stay on the device, so each row returns two numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np

from jaxlm import objectives, scoring
from jaxlm.data.special_tokens import MASK

Row = scoring.Row


@dataclasses.dataclass(frozen=True)
class Item:
  ids: list[int]
  words: list[int]  # word index of each token (-1: none), as `scoring.encode` gives it
  scored_from: int  # ids[scored_from:] are scored, ids[:scored_from] are context


def _windows(start: int, end: int, width: int) -> Iterator[tuple[int, int]]:
  """[a, b) spans of at most `width` covering [start, end)."""
  for a in range(start, end, width):
    yield a, min(a + width, end)


class ContinuationScorer:
  """Scores `Item`s with one loaded model (its scorer compiled once per row shape)."""

  def __init__(self, loaded, rows: int = scoring.ROWS):
    record = objectives.get(loaded.config.objective)
    tok = loaded.tokenizer
    self.causal = record.generates
    self.prefix_len = 1 if record.attention == "prefix" else 0
    self.opens_rows = not self.causal and record.predicts_next  # MNTP reads token i at i−1
    self.start_id = tok.token_to_id(scoring.context_token(loaded))
    self.mask_id = tok.token_to_id(MASK)
    self.max_len = loaded.config.model.max_seq_len
    self.rows = rows
    self.loaded = loaded

  def scores(self, items: Sequence[Item]) -> tuple[np.ndarray, np.ndarray]:
    """Per item: the summed log-probability (causal) or PLL of its scored tokens, in nats, and
    whether each of them is the model's argmax there. An item with nothing to score: 0, True."""
    rows, owners = [], []
    for n, item in enumerate(items):
      for row in (self._causal_rows(item) if self.causal else self._pll_rows(item)):
        rows.append(row)
        owners.append(n)
    sums_R, greedy_R = scoring.score_rows(self.loaded, rows, self.prefix_len, per_call=self.rows)
    sums, greedy = np.zeros(len(items)), np.ones(len(items), bool)
    np.add.at(sums, owners, sums_R)
    np.logical_and.at(greedy, owners, greedy_R)
    return sums, greedy

  def _causal_rows(self, item: Item) -> Iterator[Row]:
    seq, L = [self.start_id] + item.ids, self.max_len
    for a, b in _windows(1 + item.scored_from, len(seq), L):
      first = max(0, b - 1 - L)
      yield seq[first:b - 1], list(range(a - 1 - first, b - 1 - first)), seq[a:b]

  def _pll_rows(self, item: Item) -> Iterator[Row]:
    start = [self.start_id] if self.opens_rows else []
    ids, words, width = item.ids, item.words, self.max_len - len(start)
    for a, b in _windows(item.scored_from, len(ids), width):
      first = max(0, b - width)
      for i in range(a, b):
        row = scoring.masked_row(ids[first:b], words[first:b], i - first, self.mask_id)
        # With the opening token, row index i+1 holds token i, read one earlier: at i.
        yield start + row, [i - first], [ids[i]]

