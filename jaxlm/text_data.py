"""Local text -> tokenized, packed rows -> a grain pipeline of globally sharded batches.

Sources: `default` (the public-domain corpus embedded in `jaxlm/corpus`, see its SOURCES.md) or
`text:PATH[,PATH...]` (files, directories, globs). Each file is a document; Project Gutenberg
headers and footers are stripped. Documents are held out for evaluation by a hash of their name,
so the split never depends on file order or on the machine.

Packing concatenates documents (each closed by [SEP]) and cuts rows of `seq_len`; every row
carries segment ids (a new id at each document start, 0 for padding) and positions that restart
with each document, so attention and positions never cross a document boundary.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import re
import warnings
from pathlib import Path

import grain
import jax
import numpy as np
from tokenizers import Tokenizer

from jaxlm.config import Config, ConfigError

CORPUS_DIR = Path(__file__).parent / "corpus"
_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$", re.M)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG.*$", re.M)


class DataError(ValueError):
  """Bad data input; its message is one line naming the path and what is expected."""


def strip_gutenberg(text: str) -> str:
  """Drops the Project Gutenberg licence header and footer, when present."""
  start, end = _GUTENBERG_START.search(text), _GUTENBERG_END.search(text)
  if start:
    text = text[start.end():end.start() if end and end.start() > start.end() else None]
  return text.strip()


def source_files(source: str) -> list[Path]:
  """Expands `default` or `text:PATH[,PATH...]` to a sorted list of files."""
  if source == "default":
    return sorted(p for p in CORPUS_DIR.rglob("*.txt"))
  if not source.startswith("text:"):
    raise ConfigError(f"config.data.source={source!r}: unknown scheme; allowed: 'default', "
                      "'text:PATH[,PATH...]'")
  files: list[Path] = []
  for part in filter(None, source[len("text:"):].split(",")):
    matches = sorted(glob.glob(part, recursive=True)) if any(c in part for c in "*?[") else [part]
    if not matches or not all(Path(m).exists() for m in matches):
      raise DataError(f"config.data.source: {part!r} does not exist")
    for match in map(Path, matches):
      found = sorted(p for p in match.rglob("*") if p.is_file()) if match.is_dir() else [match]
      if not found:
        raise DataError(f"config.data.source: directory {str(match)!r} holds no files")
      files.extend(found)
  if not files:
    raise DataError(f"config.data.source={source!r}: names no files")
  return files


def read_documents(files: list[Path]) -> dict[str, str]:
  docs = {}
  for path in files:
    raw = path.read_bytes()
    try:
      text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
      # Real corpora hold the odd legacy-encoded file; losing a few bytes beats refusing a run.
      warnings.warn(f"{path}: not UTF-8 (byte {e.start}); undecodable bytes replaced",
                    stacklevel=2)
      text = raw.decode("utf-8", errors="replace")
    text = strip_gutenberg(text)
    if text:
      docs[str(path)] = text
  if not docs:
    raise DataError(f"config.data.source: every file is empty ({len(files)} files)")
  return docs


def split_documents(docs: dict[str, str], heldout_frac: float) -> tuple[list[str], list[str]]:
  """(train, heldout) texts; a document is held out by the hash of its file name."""

  def bucket(name: str) -> float:
    return int(hashlib.sha256(Path(name).name.encode()).hexdigest()[:8], 16) / 16**8

  names = sorted(docs)
  heldout = [n for n in names if bucket(n) < heldout_frac]
  if heldout_frac > 0 and not heldout and len(names) > 1:
    heldout = [min(names, key=bucket)]
  train = [n for n in names if n not in heldout]
  if not train:
    raise DataError("config.data.heldout_frac holds out every document; lower it")
  return [docs[n] for n in train], [docs[n] for n in heldout]


def tokenize(tok: Tokenizer, texts: list[str], sep_id: int, max_chars: int = 0) -> list[np.ndarray]:
  """Token ids per document, each closed by [SEP]; paragraphs are encoded in parallel batches."""
  out = []
  budget = max_chars or None
  for text in texts:
    if budget is not None:
      if budget <= 0:
        break
      text, budget = text[:budget], budget - len(text)
    paragraphs = [p + "\n\n" for p in text.split("\n\n")]
    ids = [np.asarray(e.ids, np.int32) for e in tok.encode_batch(paragraphs)]
    out.append(np.concatenate(ids + [np.asarray([sep_id], np.int32)]))
  return out


@dataclasses.dataclass
class PackedRows:
  tokens: np.ndarray  # (N, T) int32
  segment_ids: np.ndarray  # (N, T) int32, 1.. per row, 0 = padding
  positions: np.ndarray  # (N, T) int32, restarting at each document

  def __len__(self) -> int:
    return len(self.tokens)


def pack(docs: list[np.ndarray], seq_len: int, pad_id: int) -> PackedRows:
  """Concatenate-and-cut packing; the tail row is padded."""
  stream = np.concatenate(docs)
  doc_index = np.concatenate([np.full(len(d), i, np.int32) for i, d in enumerate(docs)])
  offsets = np.concatenate([np.arange(len(d), dtype=np.int32) for d in docs])
  n = -(-len(stream) // seq_len)
  pad = n * seq_len - len(stream)
  tokens = np.concatenate([stream, np.full(pad, pad_id, np.int32)]).reshape(n, seq_len)
  doc_index = np.concatenate([doc_index, np.full(pad, -1, np.int32)]).reshape(n, seq_len)
  positions = np.concatenate([offsets, np.zeros(pad, np.int32)]).reshape(n, seq_len)
  # Segment ids count documents within each row, from 1; a document cut at a row start restarts
  # its positions there, as if the row were its own context.
  starts = np.ones_like(doc_index, dtype=bool)
  starts[:, 1:] = doc_index[:, 1:] != doc_index[:, :-1]
  segment_ids = np.cumsum(starts, axis=1, dtype=np.int32)
  segment_ids[doc_index < 0] = 0
  first_doc_offset = positions[:, :1]
  same_as_first = doc_index == doc_index[:, :1]
  positions = np.where(same_as_first, positions - first_doc_offset, positions)
  return PackedRows(tokens, segment_ids, positions.astype(np.int32))


def batches(rows: PackedRows, global_batch: int, seed: int, *, shuffle: bool = True) -> grain.IterDataset:
  """Seeded, per-epoch reshuffled, infinite batches of this process's share of the rows.

  Each process reads rows process_index::process_count of the shuffled order, so the global
  batch (assembled across processes) is the same whatever the number of hosts.
  """
  count, index = jax.process_count(), jax.process_index()
  if global_batch % count:
    raise ConfigError(f"config.batch_size={global_batch}: must be divisible by the "
                      f"{count} processes")
  if len(rows) < global_batch:
    raise DataError(f"the data make {len(rows)} rows of seq_len tokens, fewer than one batch "
                    f"of {global_batch}; add text or lower config.batch_size")
  ds = grain.MapDataset.range(len(rows))
  if shuffle:
    ds = ds.shuffle(seed=seed)
  ds = ds.repeat(None)[index::count]
  ds = ds.map(lambda i: {"tokens": rows.tokens[i], "segment_ids": rows.segment_ids[i],
                         "positions": rows.positions[i]})
  return ds.batch(global_batch // count, drop_remainder=True).to_iter_dataset()


def to_global(batch: dict[str, np.ndarray], sharding: jax.sharding.NamedSharding) -> dict:
  """Assembles the processes' local slices into one globally sharded array per field."""
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


@dataclasses.dataclass
class TextData:
  train: PackedRows
  heldout: PackedRows
  tokenizer: Tokenizer


def load_text_data(config: Config, tok_factory) -> TextData:
  """Reads the configured source, gets the tokenizer from `tok_factory(train_texts)`, packs."""
  docs = read_documents(source_files(config.data.source))
  train_texts, heldout_texts = split_documents(docs, config.data.heldout_frac)
  tok = tok_factory(train_texts)
  sep, pad = tok.token_to_id("[SEP]"), tok.token_to_id("[PAD]")
  max_chars = config.data.max_chars
  train = pack(tokenize(tok, train_texts, sep, max_chars), config.seq_len, pad)
  heldout = pack(tokenize(tok, heldout_texts or train_texts[-1:], sep, max_chars),
                 config.seq_len, pad)
  return TextData(train, heldout, tok)
