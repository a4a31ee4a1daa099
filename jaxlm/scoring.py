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
import tqdm
from flax import nnx

from jaxlm import objectives
from jaxlm.config import DataError
from jaxlm.data.special_tokens import CLS, MASK, PAD, SEP

ROWS = 128  # rows per forward call
_SCORERS: dict[tuple, tuple] = {}  # (objective, vocab, ModelConfig) -> (graphdef, jitted scorer)
BUCKET = 8  # causal rows are right-padded to a multiple of this (exact: nothing attends ahead)


def _make_scorer(graphdef, objective_name: str, vocab: int):
  """jit(state, tokens_NxT, positions_NxK, targets_NxK, weights_NxK, prefix_len) -> ([N] sums of
  log p(target | row) at the given positions, [N] whether every weighted target is the argmax):
  the log-softmax and the gather run on the device, so only 2N numbers come back, never
  N x T x V logits."""
  objective = objectives.get(objective_name)

  @jax.jit
  def score(state, tokens_NxT, positions_NxK, targets_NxK, weights_NxK, prefix_len_N):
    picked_NxKxV = objective.inference_logits(nnx.merge(graphdef, state), tokens_NxT,
                                              prefix_len_N, positions_NxK)
    logp_NxKxV = jax.nn.log_softmax(picked_NxKxV[..., :vocab].astype(jnp.float32), axis=-1)
    logp_NxK = jnp.take_along_axis(logp_NxKxV, targets_NxK[..., None], axis=-1)[..., 0]
    greedy_NxK = (jnp.argmax(logp_NxKxV, axis=-1) == targets_NxK) | (weights_NxK == 0)
    return jnp.sum(logp_NxK * weights_NxK, axis=-1), jnp.all(greedy_NxK, axis=-1)

  return score


def score_rows(loaded, tokens_NxT, positions_NxK, targets_NxK, weights_NxK,
               prefix_len: int | None, bar: tqdm.tqdm | None = None, rows: int = ROWS,
               reader: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """([N] summed log-probabilities of the weighted targets, [N] whether each is the model's
  argmax), `rows` rows per call (the last call padded with copies, so each shape compiles
  once); `bar` advances by the rows scored. `reader`: the objective whose logits read the rows
  (default: the run's)."""
  graphdef, state = nnx.split(loaded.model)
  reader = reader or loaded.config.objective
  # Compiled once per model structure, not per model object: the checkpoints of one run (a
  # learning curve) and runs of one shape share their scorers.
  key = (reader, vocab_in_use(loaded), loaded.config.model)
  cached = _SCORERS.get(key)
  if cached is None or cached[0] != graphdef:
    cached = _SCORERS[key] = (graphdef, _make_scorer(graphdef, reader, vocab_in_use(loaded)))
  score = cached[1]
  arrays = [np.asarray(a, dtype) for a, dtype in ((tokens_NxT, np.int32),
                                                  (positions_NxK, np.int32),
                                                  (targets_NxK, np.int32),
                                                  (weights_NxK, np.float32))]
  sums, greedy = [], []
  for start in range(0, len(tokens_NxT), rows):
    chunk = [a[start:start + rows] for a in arrays]
    n = len(chunk[0])
    chunk = [np.concatenate([c, np.repeat(c[-1:], rows - n, 0)]) for c in chunk]
    prefix_N = np.full(rows, 0 if prefix_len is None else prefix_len, np.int32)
    s_N, g_N = score(state, *chunk, prefix_N)
    sums.append(np.asarray(s_N)[:n])
    greedy.append(np.asarray(g_N)[:n])
    if bar is not None:
      bar.update(n)
  return np.concatenate(sums).astype(np.float64), np.concatenate(greedy)


def masked_row(ids: Sequence[int], words: Sequence[int], i: int, mask: int) -> list[int]:
  """PLL's row for token i (PLL-word-l2r): token i masked, and with it the rest of its word."""
  return [mask if j == i or j > i and words[j] == words[i] >= 0 else t
          for j, t in enumerate(ids)]


def encode(loaded, sentences: Sequence[str]) -> list[tuple[list[int], list[int]]]:
  """(token ids, word index of each token) per sentence, without special tokens."""
  encodings = loaded.tokenizer.encode_batch(list(sentences), add_special_tokens=False)
  return [(e.ids, [w if w is not None else -1 for w in e.word_ids]) for e in encodings]


def vocab_in_use(loaded) -> int:
  """The tokenizer's tokens the embedding table holds (rows past them only pad the table)."""
  return min(loaded.tokenizer.get_vocab_size(), loaded.config.model.vocab_size)


def context_token(loaded) -> str:
  """The token a sentence is scored after: the one the run's documents open with."""
  return CLS if loaded.config.data.doc_start == "cls" else SEP


def _bar(desc: str | None, total: int) -> tqdm.tqdm:
  """A progress bar over scored rows, shown on process 0 when `desc` names the work."""
  return tqdm.tqdm(total=total, desc=desc, unit="row", dynamic_ncols=True, mininterval=1.0,
                   disable=desc is None or jax.process_index() != 0)


def causal_scores(loaded, sentences: Sequence[str], prefix_len: int | None = None,
                  progress: str | None = None) -> np.ndarray:
  """sum_i log p(w_i | <s> w_<i) per sentence (<s>: `context_token`). `progress`: a progress
  bar's label (None: no bar)."""
  sep, pad = (loaded.tokenizer.token_to_id(t) for t in (context_token(loaded), PAD))
  encoded = encode(loaded, sentences)
  scores = np.zeros(len(sentences))
  by_length: dict[int, list[int]] = defaultdict(list)
  for i, (ids, _) in enumerate(encoded):
    if ids:
      by_length[-(-(len(ids) + 1) // BUCKET) * BUCKET].append(i)
  with _bar(progress, sum(map(len, by_length.values()))) as bar:
    for length, members in sorted(by_length.items()):
      K = length - 1  # predicted positions 0..K-1 predict tokens 1..K
      tokens = np.full((len(members), length), pad, np.int32)
      weights = np.zeros((len(members), K), np.float32)
      for row, i in enumerate(members):
        ids = encoded[i][0]
        tokens[row, :len(ids) + 1] = [sep] + ids
        weights[row, :len(ids)] = 1.0
      positions = np.broadcast_to(np.arange(K), (len(members), K))
      scores[members] = score_rows(loaded, tokens, positions, tokens[:, 1:], weights,
                                   prefix_len, bar)[0]
  return scores


def pll_scores(loaded, sentences: Sequence[str], progress: str | None = None) -> np.ndarray:
  """Word-level pseudo-log-likelihood per sentence (one masked row per token). For objectives
  that predict a masked token one position earlier (MNTP), every row opens with the token
  documents open with and token i is read at position i, i.e. one before its own. A
  generating objective that also trains masked rows (the hybrid) is read as its `pll_reader`."""
  mask = loaded.tokenizer.token_to_id(MASK)
  record = objectives.get(loaded.config.objective)
  reader = objectives.get(record.pll_reader or record.name)
  shifted = reader.predicts_next
  start = [loaded.tokenizer.token_to_id(context_token(loaded))] if shifted else []
  encoded = encode(loaded, sentences)
  rows: dict[int, list[tuple[int, int, list[int]]]] = defaultdict(list)  # length -> (sent, pos, row)
  for s, (ids, words) in enumerate(encoded):
    for i in range(len(ids)):
      row = start + masked_row(ids, words, i, mask)
      rows[len(row)].append((s, i, row))
  scores = np.zeros(len(sentences))
  with _bar(progress, sum(map(len, rows.values()))) as bar:
    for length, items in sorted(rows.items()):
      # No padding here: attention is bidirectional, so every row of a call has one length.
      sentence = np.asarray([s for s, _, _ in items])
      position = np.asarray([[i] for _, i, _ in items])
      target = np.asarray([[encoded[s][0][i]] for s, i, _ in items])
      logp = score_rows(loaded, [r for _, _, r in items], position, target,
                        np.ones_like(position, np.float32), None, bar, reader=reader.name)[0]
      np.add.at(scores, sentence, logp)
  return scores


METHODS = ("auto", "causal", "pll")


def sentence_scores(loaded, sentences: Sequence[str], progress: str | None = None,
                    method: str | None = None) -> np.ndarray:
  """`method` (default: the model's `scoring`, "auto"): "causal" for models that generate
  (prefix-LM with a one-token prefix), "pll" for masked LMs and for a generating objective that
  also trains masked rows (the hybrid); "auto" picks causal where the model generates.
  `progress`: a progress bar's label. A sentence longer than a learned position table, or a
  method the objective cannot use, is refused (DataError, one line)."""
  record = objectives.get(loaded.config.objective)
  method = _method(record, method or loaded.scoring)
  _check_lengths(loaded, sentences)
  if method == "causal":
    return causal_scores(loaded, sentences, 1 if record.attention == "prefix" else None,
                         progress)
  return pll_scores(loaded, sentences, progress)


def _check_lengths(loaded, sentences: Sequence[str]) -> None:
  m = loaded.config.model
  if m.position != "learned":
    return  # relative positions read any length
  record = objectives.get(loaded.config.objective)
  opened = int(record.generates or record.predicts_next)  # rows that start with the context token
  lengths = [len(ids) + opened for ids, _ in encode(loaded, sentences)]
  longest = max(lengths, default=0)
  if longest > m.max_seq_len:
    over = sum(n > m.max_seq_len for n in lengths)
    raise DataError(f"scoring: {over} of {len(sentences)} sentences are longer than the "
                    f"model's {m.max_seq_len} learned positions (the longest: {longest} tokens); "
                    "score with a model of a larger max_seq_len")


def _method(record, method: str) -> str:
  if method not in METHODS:
    raise DataError(f"scoring: method={method!r}; allowed: {', '.join(METHODS)}")
  if method == "auto":
    return "causal" if record.generates else "pll"
  if method == "causal" and not record.generates:
    raise DataError(f"scoring: method=causal for a {record.name} model, which does not "
                    "generate; use pll")
  if method == "pll" and record.generates and record.pll_reader is None:
    raise DataError(f"scoring: method=pll for a {record.name} model, which never trained on "
                    "masked tokens; use causal")
  return method
