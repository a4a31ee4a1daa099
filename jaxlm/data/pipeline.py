"""Documents -> token ids (cached on disk) -> packed rows -> grain batches, sharded per host.

The pipeline is the same for every objective (MLM masking happens on the device), so a
comparison feeds its variants the same tokens in the same order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from pathlib import Path
from typing import Callable

import grain
import jax
import numpy as np
from etils import epath
from tokenizers import Tokenizer

from jaxlm import storage
from jaxlm.config import Config, ConfigError, DataError
from jaxlm.data import packing, sentence_pairs, sources, token_classes, tokenizer
from jaxlm.data.packing import PackedRows
from jaxlm.data.sources.text import split_documents


def cache_dir(config: Config) -> epath.Path:
  """Where token ids and trained tokenizers are kept between runs (local or gs://)."""
  if config.data.cache_dir:
    return storage.path(config.data.cache_dir)
  return storage.path(os.environ.get("JAXLM_CACHE_DIR", Path.home() / ".cache" / "jaxlm"))


def tokenize(tok: Tokenizer, texts: list[str], sep_id: int, max_chars: int = 0,
             start_id: int | None = None) -> list[np.ndarray]:
  """Token ids per document, each opened by `start_id` (when given) and closed by [SEP];
  paragraphs are encoded in parallel batches."""
  out = []
  budget = max_chars or None
  for text in texts:
    if budget is not None:
      if budget <= 0:
        break
      text, budget = text[:budget], budget - len(text)
    paragraphs = [p + "\n\n" for p in text.split("\n\n")]
    ids = [np.asarray(e.ids, np.int32) for e in tok.encode_batch(paragraphs)]
    start = [np.asarray([start_id], np.int32)] if start_id is not None else []
    out.append(np.concatenate(start + ids + [np.asarray([sep_id], np.int32)]))
  return out


def cached_tokenize(tok: Tokenizer, texts: list[str], sep_id: int, max_chars: int,
                    directory: epath.Path, start_id: int | None = None) -> list[np.ndarray]:
  """`tokenize`, memoised on disk by (tokenizer, texts, max_chars): reruns skip the work."""
  digest = hashlib.sha256(tokenizer.tokenizer_hash(tok).encode())
  # Without a start token the key is what it was before start tokens existed: caches stay valid.
  opening = "" if start_id is None else f":start{start_id}"
  digest.update(f"{max_chars}:{sep_id}:{len(texts)}{opening}".encode())
  for text in texts:
    digest.update(hashlib.sha256(text.encode("utf-8", "replace")).digest())
  path = directory / f"{digest.hexdigest()[:32]}.npz"
  if path.exists():
    with np.load(io.BytesIO(path.read_bytes())) as f:
      return np.split(f["ids"], np.cumsum(f["lengths"])[:-1])
  docs = tokenize(tok, texts, sep_id, max_chars, start_id)
  buffer = io.BytesIO()
  np.savez(buffer, ids=np.concatenate(docs), lengths=np.array([len(d) for d in docs]))
  storage.write_atomic(path, buffer.getvalue())  # a concurrent or killed run never sees half
  return docs


# A batch is a few fancy indexes into rows held in memory (well under a millisecond), so two
# threads a few batches ahead keep any step fed. grain's default (16 threads, 500 batches ahead)
# made every iterator, each evaluation's too, cut hundreds of batches no step read, beside the
# steps on the same cores.
READ_OPTIONS = grain.ReadOptions(num_threads=2, prefetch_buffer_size=8)


def batches(rows: PackedRows, global_batch: int, seed: int, *, shuffle: bool = True,
            process_index: int | None = None, process_count: int | None = None) -> grain.IterDataset:
  """Seeded, per-epoch reshuffled, infinite batches of this process's share of the rows.

  The global order is fixed by the seed alone. Process i takes the i-th contiguous slice of
  every global batch, which is where `jax.make_array_from_process_local_data` places it, so the
  assembled global batch (and each row's MLM mask) is the same for any number of hosts.
  """
  count = jax.process_count() if process_count is None else process_count
  index = jax.process_index() if process_index is None else process_index
  if global_batch % count:
    raise ConfigError(f"config.batch_size={global_batch}: must be divisible by the "
                      f"{count} processes")
  if len(rows) < global_batch:
    raise DataError(f"the data make {len(rows)} rows of seq_len tokens, fewer than one batch "
                    f"of {global_batch}; add text or lower config.batch_size")
  local = global_batch // count
  ds = grain.MapDataset.range(len(rows))
  if shuffle:
    ds = ds.shuffle(seed=seed)
  ds = ds.repeat(None).batch(global_batch, drop_remainder=True)
  ds = ds.map(lambda ids: ids[index * local:(index + 1) * local])
  ds = ds.map(rows.batch)
  return ds.to_iter_dataset(READ_OPTIONS)


def to_global(batch: dict[str, np.ndarray], sharding: jax.sharding.NamedSharding) -> dict:
  """Assembles the processes' local slices into one globally sharded array per field."""
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


@dataclasses.dataclass
class Data:
  train: PackedRows
  heldout: PackedRows
  tokenizer: Tokenizer
  heldout_bytes: int = 0  # UTF-8 bytes of the held-out text: bits per byte without a re-read


ROW_LAYOUTS = ("packed", "sentence_pairs")


def load(config: Config, get_tokenizer: Callable[[list[str]], Tokenizer],
         layout: str = "packed") -> Data:
  """Reads the configured source, gets the tokenizer from `get_tokenizer(train_texts)`,
  tokenizes (or reads the cache) and makes both splits' rows: `packed` (data.packing: pack or
  pad) or `sentence_pairs` (next-sentence prediction, `sentence_pairs.pair_rows`), as the
  objective's record says."""
  if layout not in ROW_LAYOUTS:
    raise ValueError(f"layout={layout!r}: allowed: {', '.join(ROW_LAYOUTS)}")
  docs = sources.read_source(config)
  train_texts, heldout_texts = split_documents(docs, config.data.heldout_frac)
  tok = get_tokenizer(train_texts)
  special = tokenizer.special_tokens(tok)
  sep = tok.token_to_id(tokenizer.SEP)
  to_rows = packing.pack if config.data.packing == "pack" else packing.pad
  splits = []
  for split, texts in enumerate((train_texts, heldout_texts or train_texts[-1:])):
    ids = cached_tokenize(tok, texts, sep, config.data.max_chars, cache_dir(config) / "tokens",
                          start_id(config, tok))
    if layout == "sentence_pairs":
      if len(ids) < 2:
        raise DataError(f"config.data.source={config.data.source!r}: next-sentence pairs need "
                        f"at least 2 documents per split, the {('train', 'held-out')[split]} "
                        f"split has {len(ids)}")
      splits.append(sentence_pairs.pair_rows(
        ids, config.seq_len, special, tok.token_to_id(tokenizer.CLS), sep,
        token_classes.sentence_ends(tok), seed=config.seed * 2 + split))
    else:
      splits.append(to_rows(ids, config.seq_len, special.pad))
  heldout_bytes = sum(len(t.encode("utf-8")) for t in heldout_texts)
  return Data(splits[0], splits[1], tok, heldout_bytes)


def describe(rows: PackedRows) -> dict:
  real = int((rows.segment_ids > 0).sum())
  return {"rows": len(rows), "tokens": real, "padding_frac": 1 - real / rows.tokens.size}


def start_id(config: Config, tok: Tokenizer) -> int | None:
  """The token a document opens with (`data.doc_start`), or None."""
  return tok.token_to_id(tokenizer.CLS) if config.data.doc_start == "cls" else None


def training_token_ids(data: Data, tok: Tokenizer) -> np.ndarray:
  """Every token id of the packed training rows, special tokens dropped: exactly the text a
  run pre-trained on, which the zero-shot references are fitted on."""
  rows = data.train
  ids = rows.tokens[rows.segment_ids > 0]
  return ids[~np.isin(ids, np.asarray(tokenizer.special_tokens(tok).special_ids))]
