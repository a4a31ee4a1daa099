"""Sentence-pair rows for next-sentence prediction, built as BERT's `create_pretraining_data.py`
builds them (`create_instances_from_document`).

Each document is cut into sentences (at tokens that end one, `token_classes.sentence_ends`;
a sentence longer than a row is cut into row-sized pieces). Sentences are gathered into chunks of
a target length (T - 3, or with probability `short_seq_prob` a random length in [2, T - 3], once
per document, as BERT). A chunk splits at a random sentence boundary into A and B; with
probability 1/2, B is replaced by sentences from a random point of another document (label 1,
"not next"), and the chunk's unused sentences go back to be read again. The pair is trimmed to
T - 3 tokens, longest side first, from a random end, and written `[CLS] A [SEP] B [SEP]` with
token types 0 ... 0 1 ... 1.

Everything is drawn from one `numpy` generator seeded by (seed, split), so the rows are a pure
function of the seed and the documents: a resumed run reads the very same rows. BERT drew
`dupe_factor` = 10 copies with different masks; jaxlm masks on the device at every step, so one
copy is enough.
"""

from __future__ import annotations

import numpy as np

from jaxlm.data.packing import PackedRows
from jaxlm.data.special_tokens import SpecialTokens

SHORT_SEQ_PROB = 0.1  # BERT's default: some rows are short, so fine-tuning on short inputs works
NEXT, RANDOM = 0, 1  # nsp_labels, as transformers' BertForPreTraining reads them


def split_sentences(doc: np.ndarray, ends_V: np.ndarray, max_len: int) -> list[np.ndarray]:
  """A document's tokens as sentences: cut after every run of sentence-ending tokens ('?' then
  a line break is one end), and into pieces of at most `max_len` tokens."""
  ends = ends_V[doc]
  cuts = np.flatnonzero(ends & ~np.append(ends[1:], False)) + 1
  out = []
  for sentence in np.split(doc, cuts):
    out.extend(sentence[i:i + max_len] for i in range(0, len(sentence), max_len))
  return [s for s in out if len(s)]


def _truncate(a: list[int], b: list[int], budget: int, rng: np.random.Generator) -> None:
  """BERT's truncate_seq_pair: trims the longer side, from its front or back at random."""
  while len(a) + len(b) > budget:
    longer = a if len(a) > len(b) else b
    if rng.random() < 0.5:
      del longer[0]
    else:
      longer.pop()


def pair_rows(docs: list[np.ndarray], seq_len: int, special: SpecialTokens, cls_id: int,
              sep_id: int, ends_V: np.ndarray, seed: int,
              short_seq_prob: float = SHORT_SEQ_PROB) -> PackedRows:
  """Sentence-pair rows from `docs` (token ids, each closed by [SEP], maybe opened by [CLS]); at
  least two documents."""
  if len(docs) < 2:
    raise ValueError(f"next-sentence pairs need at least 2 documents, got {len(docs)}")
  rng = np.random.default_rng(seed)
  max_tokens = seq_len - 3
  # Documents may open with [CLS] (data.doc_start) and close with [SEP]: the pairs add their own.
  bare = [d[1:] if len(d) and d[0] == cls_id else d for d in docs]
  sentences = [split_sentences(d[:-1] if len(d) and d[-1] == sep_id else d, ends_V, max_tokens)
               for d in bare]
  rows: list[tuple[list[int], list[int], int]] = []
  for d, doc in enumerate(sentences):
    target = max_tokens
    if rng.random() < short_seq_prob:
      target = int(rng.integers(2, max_tokens + 1))
    chunk: list[np.ndarray] = []
    length, i = 0, 0
    while i < len(doc):
      chunk.append(doc[i])
      length += len(doc[i])
      if i == len(doc) - 1 or length >= target:
        a_end = 1 if len(chunk) < 2 else int(rng.integers(1, len(chunk)))
        a = [int(t) for s in chunk[:a_end] for t in s]
        if len(chunk) == 1 or rng.random() < 0.5:
          label, b = RANDOM, []
          other = int(rng.integers(0, len(sentences) - 1))
          other += other >= d  # any document but this one
          start = int(rng.integers(0, len(sentences[other]))) if sentences[other] else 0
          for s in sentences[other][start:]:
            b.extend(int(t) for t in s)
            if len(b) >= target - len(a):
              break
          i -= len(chunk) - a_end  # the unused sentences are read again
        else:
          label, b = NEXT, [int(t) for s in chunk[a_end:] for t in s]
        _truncate(a, b, max_tokens, rng)
        if a and b:
          rows.append((a, b, label))
        chunk, length = [], 0
      i += 1
  return _pack(rows, seq_len, special.pad, cls_id, sep_id)


def _pack(rows: list[tuple[list[int], list[int], int]], seq_len: int, pad_id: int, cls_id: int,
          sep_id: int) -> PackedRows:
  n = len(rows)
  tokens = np.full((n, seq_len), pad_id, np.int32)
  types = np.zeros((n, seq_len), np.int32)
  lengths = np.zeros(n, np.int64)
  for r, (a, b, _) in enumerate(rows):
    ids = [cls_id, *a, sep_id, *b, sep_id]
    tokens[r, :len(ids)] = ids
    types[r, len(a) + 2:len(ids)] = 1
    lengths[r] = len(ids)
  real = np.arange(seq_len)[None, :] < lengths[:, None]
  positions = np.where(real, np.arange(seq_len)[None, :], 0).astype(np.int32)
  return PackedRows(tokens=tokens, segment_ids=real.astype(np.int32), positions=positions,
                    token_types=types, nsp_labels=np.array([r[2] for r in rows], np.int32))
