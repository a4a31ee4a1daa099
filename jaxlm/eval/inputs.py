"""Classifier inputs: `[CLS] a [SEP] b [SEP]` rows for every model (BERT's format, and GPT-1's
start, delimiter and extract tokens with the same ids), padded batches with weights, and
prediction batches cut to their rows' length. Fine-tuning (`jaxlm.finetune`) and the
frozen-feature probe (`jaxlm.eval.probe`) read the same rows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from tokenizers import Tokenizer

from jaxlm.data import special_tokens
from jaxlm.eval.tasks.base import Examples


def encode(tok: Tokenizer, examples: Examples, max_len: int) -> dict[str, np.ndarray]:
  """Token ids (N, max_len), segment ids (1 = real, 0 = padding) and token types (0 for
  [CLS] a [SEP], 1 for b [SEP], 0 for padding), truncated longest-first."""
  cls_id, sep_id, pad_id = (tok.token_to_id(t) for t in (special_tokens.CLS, special_tokens.SEP,
                                                          special_tokens.PAD))
  a_ids = [e.ids for e in tok.encode_batch(examples.texts_a, add_special_tokens=False)]
  b_ids = ([e.ids for e in tok.encode_batch(examples.texts_b, add_special_tokens=False)]
           if examples.texts_b is not None else [None] * len(a_ids))
  tokens = np.full((len(a_ids), max_len), pad_id, np.int32)
  token_types = np.zeros((len(a_ids), max_len), np.int32)
  for i, (a, b) in enumerate(zip(a_ids, b_ids)):
    budget = max_len - (3 if b is not None else 2)
    a, b = list(a), list(b) if b is not None else None
    while len(a) + len(b or []) > budget:  # longest-first, as BERT's run_classifier does
      (a if b is None or len(a) >= len(b) else b).pop()
    ids = [cls_id] + a + [sep_id] + (b + [sep_id] if b is not None else [])
    tokens[i, :len(ids)] = ids
    if b is not None:
      token_types[i, len(a) + 2:len(ids)] = 1
  return {"tokens": tokens, "segment_ids": (tokens != pad_id).astype(np.int32) |
          (np.arange(max_len) == 0)[None].astype(np.int32), "token_types": token_types}


def padded(batch: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
  """Pads every array to `size` rows; the padding rows get weight 0."""
  n = len(batch["tokens"])
  out = {k: np.concatenate([v, np.zeros((size - n, *v.shape[1:]), v.dtype)]) for k, v in
         batch.items()}
  out["weights"] = (np.arange(size) < n).astype(np.float32)
  out["segment_ids"][n:, 0] = 1  # padding rows hold one [PAD] token, so no row is empty
  return out


WIDTH_MULTIPLE = 16  # prediction batches are cut to a multiple of this many positions


def prediction_batches(rows: dict[str, np.ndarray], size: int
                       ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
  """(row indices, padded batch of `size` rows) over `rows` (as `encode` gives them) in order
  of length, each batch cut to its longest row rounded up to WIDTH_MULTIPLE positions (at most
  the encoded width): no real token is cut, short rows are not run at the full width, and a
  model compiles one shape per WIDTH_MULTIPLE positions. Padding positions are segment 0,
  which no real token attends to."""
  lengths = rows["segment_ids"].sum(1)
  order = np.argsort(lengths, kind="stable")
  width = rows["tokens"].shape[1]
  for start in range(0, len(order), size):
    ids = order[start:start + size]
    cut = min(width, -(-int(lengths[ids].max()) // WIDTH_MULTIPLE) * WIDTH_MULTIPLE)
    yield ids, padded({k: v[ids, :cut] for k, v in rows.items()}, size)
