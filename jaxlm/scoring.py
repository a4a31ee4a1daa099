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
Rows of nearby lengths share a compiled shape: right-padded to the longest of their group under
a segment mask (padding is segment 0, which no real token attends to, whatever the attention
kind), the groups chosen to minimise compiles plus padded work (`_groups`), where a shape the
scorer already compiled (an earlier call's: the learning curve's subsets after the study's
full scoring) costs no compile. Every call has ROWS rows; the log-softmax and the gather of
the scored tokens run on the device.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from flax import nnx

from jaxlm import objectives, sharding
from jaxlm.config import DataError
from jaxlm.data.special_tokens import CLS, MASK, PAD, SEP

ROWS = 128  # rows per forward call
# What one more compiled shape costs, in padded tokens scored: about 1 s of XLA compile against
# about 11 us per token on 2 CPU cores (tiny model); on an accelerator it is larger still.
COMPILE_TOKENS = 100_000


@dataclasses.dataclass
class _Scorer:
  graphdef: nnx.GraphDef
  score: Callable  # `_make_scorer`'s
  # Per (rows per call, mesh): (longest length, whether padded under a mask) of every row shape
  # run so far. For the sentence scorers' rows (PLL: one position read; causal: every one) the
  # length decides the rest of the shape; rows read elsewhere (lm-eval's continuations) may
  # compile a shape counted as free: a cost misjudged, never a score.
  compiled: defaultdict = dataclasses.field(default_factory=lambda: defaultdict(set))


_SCORERS: dict[tuple, _Scorer] = {}  # (objective, vocab, ModelConfig) -> its scorer
Row = tuple[Sequence[int], Sequence[int], Sequence[int]]  # tokens, positions read, tokens there


def _make_scorer(graphdef, objective_name: str, vocab: int):
  """jit(state, tokens_NxT, segment_ids_NxT or None, positions_NxK, targets_NxK, weights_NxK,
  prefix_len) -> ([N] sums of log p(target | row) at the given positions, [N] whether every
  weighted target is the argmax): the log-softmax and the gather run on the device, so only 2N
  numbers come back, never N x K x V logits."""
  objective = objectives.get(objective_name)

  @jax.jit
  def score(state, tokens_NxT, segment_ids_NxT, positions_NxK, targets_NxK, weights_NxK,
            prefix_len_N):
    picked_NxKxV = objective.inference_logits(nnx.merge(graphdef, state), tokens_NxT,
                                              prefix_len_N, positions_NxK, segment_ids_NxT)
    logp_NxKxV = jax.nn.log_softmax(picked_NxKxV[..., :vocab].astype(jnp.float32), axis=-1)
    logp_NxK = jnp.take_along_axis(logp_NxKxV, targets_NxK[..., None], axis=-1)[..., 0]
    greedy_NxK = (jnp.argmax(logp_NxKxV, axis=-1) == targets_NxK) | (weights_NxK == 0)
    return jnp.sum(logp_NxK * weights_NxK, axis=-1), jnp.all(greedy_NxK, axis=-1)

  return score


def _groups(counts: dict[int, int],
            compiled: set[tuple[int, bool]] = frozenset()) -> list[list[int]]:
  """Row lengths (keys of `counts`: length -> rows) in groups of consecutive lengths, each run
  padded to its longest, minimising COMPILE_TOKENS per group whose shape is not in `compiled`
  ((longest, whether the group holds several lengths): shapes already compiled) plus the padded
  tokens scored (a dynamic program over the sorted lengths)."""
  lengths = sorted(counts)
  best = [0.0] + [float("inf")] * len(lengths)  # best[j]: cost of the first j lengths
  cut = [0] * (len(lengths) + 1)
  for j in range(1, len(lengths) + 1):
    longest, rows = lengths[j - 1], 0
    for i in range(j, 0, -1):  # the last group holds lengths i-1 .. j-1
      rows += counts[lengths[i - 1]]
      compiling = 0 if (longest, j - i > 0) in compiled else COMPILE_TOKENS
      cost = best[i - 1] + compiling + rows * longest
      if cost < best[j]:
        best[j], cut[j] = cost, i - 1
  groups, j = [], len(lengths)
  while j:
    groups.append(lengths[cut[j]:j])
    j = cut[j]
  return groups[::-1]


def score_rows(loaded, rows: Sequence[Row], prefix_len: int | None,
               bar: tqdm.tqdm | None = None, per_call: int | None = None,
               reader: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Per row (tokens, positions read, the tokens scored there): ([R] summed log-probabilities
  of those tokens, [R] whether each is the model's argmax). Rows are grouped by length
  (`_groups`) and run `per_call` at a time (default ROWS; the last call padded with copies, so
  each shape compiles once); `bar` advances by the rows scored. `reader`: the objective whose
  logits read the rows (default: the run's)."""
  by_length: dict[int, list[int]] = defaultdict(list)
  for r, (tokens, _, _) in enumerate(rows):
    by_length[len(tokens)].append(r)
  pad = loaded.tokenizer.token_to_id(PAD)
  sums_R, greedy_R = np.zeros(len(rows)), np.ones(len(rows), bool)
  per_call = per_call or ROWS
  graphdef, state = nnx.split(loaded.model)
  scorer = _scorer(loaded, graphdef, reader or loaded.config.objective)
  mesh = getattr(loaded, "mesh", None)
  compiled = scorer.compiled[per_call, None if mesh is None else tuple(mesh.shape.items())]
  for lengths in _groups({n: len(members) for n, members in by_length.items()}, compiled):
    members = [r for n in lengths for r in by_length[n]]
    T, K = lengths[-1], max(len(rows[r][1]) for r in members)
    tokens_NxT = np.full((len(members), T), pad, np.int32)
    segments_NxT = np.zeros((len(members), T), np.int32)
    positions_NxK, targets_NxK = (np.zeros((len(members), K), np.int32) for _ in range(2))
    weights_NxK = np.zeros((len(members), K), np.float32)
    for n, r in enumerate(members):
      tokens, positions, targets = rows[r]
      tokens_NxT[n, :len(tokens)] = tokens
      segments_NxT[n, :len(tokens)] = 1
      positions_NxK[n, :len(positions)] = positions
      targets_NxK[n, :len(targets)] = targets
      weights_NxK[n, :len(targets)] = 1.0
    # One length: no padding to keep out, so no mask to build.
    arrays = (tokens_NxT, segments_NxT if len(lengths) > 1 else None, positions_NxK,
              targets_NxK, weights_NxK)
    sums_R[members], greedy_R[members] = _score_arrays(scorer.score, state, arrays, prefix_len,
                                                       bar, per_call, mesh)
    compiled.add((T, len(lengths) > 1))
  return sums_R, greedy_R


def _scorer(loaded, graphdef: nnx.GraphDef, reader: str) -> _Scorer:
  """The scorer of `loaded`'s structure read as objective `reader`: compiled once per model
  structure, not per model object, so the checkpoints of one run (a learning curve) and runs
  of one shape share it (and the shapes it compiled)."""
  key = (reader, vocab_in_use(loaded), loaded.config.model)
  cached = _SCORERS.get(key)
  if cached is None or cached.graphdef != graphdef:
    cached = _SCORERS[key] = _Scorer(graphdef, _make_scorer(graphdef, reader,
                                                            vocab_in_use(loaded)))
  return cached


def _score_arrays(score: Callable, state: nnx.State, arrays: tuple[np.ndarray | None, ...],
                  prefix_len: int | None, bar: tqdm.tqdm | None, per_call: int,
                  mesh) -> tuple[np.ndarray, np.ndarray]:
  """`score_rows` for rows of one padded shape (over `mesh`'s data x fsdp shards, or one
  device when None)."""
  if mesh is not None:  # rows over data x fsdp: every call's rows divide among the shards
    shards = mesh.shape["data"] * mesh.shape["fsdp"]
    per_call = -(-per_call // shards) * shards
    rows_sharding = sharding.batch_sharding(mesh)
  sums, greedy = [], []
  for start in range(0, len(arrays[0]), per_call):
    chunk = [None if a is None else a[start:start + per_call] for a in arrays]
    n = len(chunk[0])
    chunk = [None if c is None else np.concatenate([c, np.repeat(c[-1:], per_call - n, 0)])
             for c in chunk]
    chunk.append(np.full(per_call, 0 if prefix_len is None else prefix_len, np.int32))
    if mesh is None:
      s_N, g_N = score(state, *chunk)
    else:
      with jax.set_mesh(mesh):
        s_N, g_N = score(state, *(None if c is None else jax.device_put(c, rows_sharding)
                                  for c in chunk))
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
  start = loaded.tokenizer.token_to_id(context_token(loaded))
  encoded = encode(loaded, sentences)
  scored = [s for s, (ids, _) in enumerate(encoded) if ids]
  # Position i of [<s>] + ids predicts token i + 1.
  rows = [([start] + ids[:-1], range(len(ids)), ids)
          for ids in (encoded[s][0] for s in scored)]
  scores = np.zeros(len(sentences))
  with _bar(progress, len(rows)) as bar:
    scores[scored] = score_rows(loaded, rows, prefix_len, bar)[0]
  return scores


def pll_scores(loaded, sentences: Sequence[str], progress: str | None = None) -> np.ndarray:
  """Word-level pseudo-log-likelihood per sentence (one masked row per token). For objectives
  that predict a masked token one position earlier (MNTP), every row opens with the token
  documents open with and token i is read at position i, i.e. one before its own. A
  generating objective that also trains masked rows (the hybrid) is read as its `pll_reader`."""
  mask = loaded.tokenizer.token_to_id(MASK)
  record = objectives.get(loaded.config.objective)
  reader = objectives.get(record.pll_reader or record.name)
  start = [loaded.tokenizer.token_to_id(context_token(loaded))] if reader.predicts_next else []
  owners, rows = [], []
  for s, (ids, words) in enumerate(encode(loaded, sentences)):
    for i in range(len(ids)):
      owners.append(s)
      rows.append((start + masked_row(ids, words, i, mask), [i], [ids[i]]))
  scores = np.zeros(len(sentences))
  with _bar(progress, len(rows)) as bar:
    np.add.at(scores, owners, score_rows(loaded, rows, None, bar, reader=reader.name)[0])
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
