"""Token streams -> fixed-length rows with segment ids and positions.

`pack` concatenates documents (each closed by [SEP]) and cuts rows of `seq_len`, so no token is
wasted; `pad` gives every document rows of its own. Either way each row carries segment ids (a
new id at each document start, 0 for padding) and positions that restart with each document:
attention (which takes the segment ids) and positions never cross a document boundary.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NotRequired, TypedDict

import numpy as np


class Batch(TypedDict):
  """What every step, loss and evaluation takes: B rows of T tokens (numpy on the host, globally
  sharded jax arrays on the devices)."""

  tokens: Any  # (B, T) int32
  segment_ids: Any  # (B, T) int32, 1.. per document, 0 = padding
  positions: Any  # (B, T) int32, restarting at each document
  # Sentence-pair rows only (next-sentence prediction, `jaxlm.data.sentence_pairs`):
  token_types: NotRequired[Any]  # (B, T) int32: 0 for [CLS] A [SEP], 1 for B [SEP]
  nsp_labels: NotRequired[Any]  # (B,) int32: 0 = B follows A, 1 = B is a random segment


BATCH_KEYS: tuple[str, ...] = ("tokens", "segment_ids", "positions")  # in every batch


@dataclasses.dataclass
class PackedRows:
  tokens: np.ndarray  # (N, T) int32
  segment_ids: np.ndarray  # (N, T) int32, 1.. per row, 0 = padding
  positions: np.ndarray  # (N, T) int32, restarting at each document
  token_types: np.ndarray | None = None  # (N, T) int32, sentence-pair rows only
  nsp_labels: np.ndarray | None = None  # (N,) int32, sentence-pair rows only

  def __len__(self) -> int:
    return len(self.tokens)

  def batch(self, ids) -> Batch:
    """The rows `ids` as a Batch."""
    batch = Batch(tokens=self.tokens[ids], segment_ids=self.segment_ids[ids],
                  positions=self.positions[ids])
    if self.token_types is not None:
      batch.update(token_types=self.token_types[ids], nsp_labels=self.nsp_labels[ids])
    return batch


def _rows(stream: np.ndarray, doc_index: np.ndarray, offsets: np.ndarray, seq_len: int,
          pad_id: int) -> PackedRows:
  n = -(-len(stream) // seq_len)
  pad = n * seq_len - len(stream)
  tokens = np.concatenate([stream, np.full(pad, pad_id, np.int32)]).reshape(n, seq_len)
  doc_index = np.concatenate([doc_index, np.full(pad, -1, np.int64)]).reshape(n, seq_len)
  positions = np.concatenate([offsets, np.zeros(pad, np.int64)]).reshape(n, seq_len)
  starts = np.ones_like(doc_index, dtype=bool)
  starts[:, 1:] = doc_index[:, 1:] != doc_index[:, :-1]
  segment_ids = np.cumsum(starts, axis=1).astype(np.int32)
  segment_ids[doc_index < 0] = 0
  # A document cut at a row start restarts its positions there, as if the row were its context.
  positions = np.where(doc_index == doc_index[:, :1], positions - positions[:, :1], positions)
  return PackedRows(tokens, segment_ids, positions.astype(np.int32))


def pack(docs: list[np.ndarray], seq_len: int, pad_id: int) -> PackedRows:
  """Concatenate-and-cut packing; only the last row is padded."""
  lengths = np.array([len(d) for d in docs])
  stream = np.concatenate(docs).astype(np.int32)
  doc_index = np.repeat(np.arange(len(docs)), lengths)
  offsets = np.arange(len(stream)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
  return _rows(stream, doc_index, offsets, seq_len, pad_id)


def pad(docs: list[np.ndarray], seq_len: int, pad_id: int) -> PackedRows:
  """One document per row: long documents continue on further rows, each padded at its end."""
  padded = [np.concatenate([d, np.full(-len(d) % seq_len, -1)]) for d in docs]
  lengths = np.array([len(d) for d in padded])
  stream = np.concatenate(padded)
  doc_index = np.where(stream >= 0, np.repeat(np.arange(len(docs)), lengths), -1)
  offsets = np.arange(len(stream)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
  rows = _rows(np.where(stream >= 0, stream, pad_id).astype(np.int32), doc_index, offsets,
               seq_len, pad_id)
  return rows
