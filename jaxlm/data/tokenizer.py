"""Tokenizers with Hugging Face `tokenizers`: trained offline (byte-level BPE or WordPiece) or
loaded from tokenizer.json, BERT's vocab.txt or GPT-2's vocab.json + merges.txt.

Trained ones carry the five special tokens at ids 0-4; loaded ones get any that are missing
appended. One tokenizer serves every objective of a comparison. It is saved as
WORKDIR/tokenizer.json, reused on restart, and its hash is recorded with the run.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Callable, Iterable

import jax
import numpy as np
from etils import epath
from jax.experimental import multihost_utils
from tokenizers import (
  Tokenizer,
  decoders,
  implementations,
  models,
  normalizers,
  pre_tokenizers,
  trainers,
)

from jaxlm import storage
from jaxlm.data import token_classes
from jaxlm.data.special_tokens import CLS, MASK, PAD, SEP, SPECIALS, UNK, SpecialTokens  # noqa: F401
from jaxlm.errors import DataError


def train_tokenizer(kind: str, texts: Iterable[str], vocab_size: int) -> Tokenizer:
  """Trains a byte-level BPE (GPT-2 style) or WordPiece (BERT style) tokenizer on `texts`."""
  if kind == "bpe":
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
  elif kind == "wordpiece":
    tok = Tokenizer(models.WordPiece(unk_token=UNK))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                        show_progress=False)
  else:
    raise ValueError(f"tokenizer kind {kind!r}: allowed: bpe, wordpiece")
  tok.train_from_iterator(texts, trainer=trainer)
  return tok


def load_file(spec: str | os.PathLike) -> Tokenizer:
  """An existing tokenizer, local or gs://: tokenizer.json, BERT's vocab.txt, or GPT-2's
  vocab.json + merges.txt (a directory or either file). Missing jaxlm special tokens are
  appended to the vocabulary."""
  path = storage.path(spec)
  if path.is_dir():
    candidates = [path / "tokenizer.json", path / "vocab.json", path / "vocab.txt"]
    found = [c for c in candidates if c.exists()]
    if not found:
      raise DataError(f"config.data.tokenizer={str(spec)!r}: holds no tokenizer.json, "
                       "vocab.json + merges.txt, or vocab.txt")
    path = found[0]
  if not path.exists():
    raise DataError(f"config.data.tokenizer={str(spec)!r}: no such file; expected bpe, "
                    "wordpiece, or a tokenizer.json / vocab.txt / vocab.json + merges.txt path")
  # Files are read as text and handed over as data, so a gs:// tokenizer reads like a local one.
  if path.name == "tokenizer.json" or path.suffix == ".json" and path.name != "vocab.json":
    tok = Tokenizer.from_str(path.read_text(encoding="utf-8"))
  elif path.name in ("vocab.json", "merges.txt"):
    vocab, merges = path.parent / "vocab.json", path.parent / "merges.txt"
    if not merges.exists() or not vocab.exists():
      raise DataError(f"config.data.tokenizer={str(spec)!r}: GPT-2 tokenizers need vocab.json "
                       "and merges.txt side by side")
    pairs = [tuple(line.split(" ")) for line in _lines(merges) if not line.startswith("#version")]
    tok = implementations.ByteLevelBPETokenizer(
      json.loads(vocab.read_text(encoding="utf-8")), pairs)._tokenizer
  elif path.suffix == ".txt":
    # As WordPiece.read_file: one token per line, its id the line number.
    vocab = {word.rstrip(): i for i, word in enumerate(_lines(path))}
    # Cased BERT vocabularies hold capitalised words; uncased ones never do.
    cased = any(w[:1].isupper() for w in vocab if w.isalpha())
    tok = implementations.BertWordPieceTokenizer(vocab, lowercase=not cased)._tokenizer
  else:
    raise DataError(f"config.data.tokenizer={str(spec)!r}: expected tokenizer.json, vocab.txt, "
                     "or vocab.json + merges.txt")
  missing = [t for t in SPECIALS if tok.token_to_id(t) is None]
  if missing:
    tok.add_special_tokens(missing)
  return tok


def _lines(path: epath.Path) -> list[str]:
  """Lines split on newlines only, as Rust's `lines()` does (tokens may hold other breaks)."""
  lines = [line.removesuffix("\r") for line in path.read_text(encoding="utf-8").split("\n")]
  return lines[:-1] if lines and not lines[-1] else lines


def load_or_train(workdir: str | os.PathLike, spec: str, texts: list[str], vocab_size: int,
                  cache: os.PathLike | None = None) -> Tokenizer:
  """The run's tokenizer: WORKDIR/tokenizer.json if the run has one, else trained (`bpe`,
  `wordpiece`) or loaded (a path), then saved there so every restart uses the same one.

  `tokenizers` breaks ties between equally frequent merges in hash-map order, so two trainings
  on the same text can differ. Trained tokenizers are therefore kept in `cache`, keyed by
  (kind, vocabulary size, text): every run on the same data gets the very same tokenizer.
  """
  path = storage.path(workdir) / "tokenizer.json"
  if path.exists():
    return Tokenizer.from_str(path.read_text(encoding="utf-8"))
  if spec in ("bpe", "wordpiece"):
    digest = hashlib.sha256(f"{spec}:{vocab_size}:{len(texts)}".encode())
    for text in texts:
      digest.update(hashlib.sha256(text.encode("utf-8", "replace")).digest())
    cached = (storage.path(cache) / f"{spec}-{vocab_size}-{digest.hexdigest()[:24]}.json"
              if cache else None)
    if cached is not None and cached.exists():
      tok = Tokenizer.from_str(cached.read_text(encoding="utf-8"))
    else:
      tok = train_tokenizer(spec, texts, vocab_size)
      if cached is not None:
        storage.write_atomic(cached, tok.to_str(pretty=True))
  else:
    tok = load_file(spec)
  storage.write_atomic(path, tok.to_str(pretty=True))
  return tok


def from_process_zero(make: Callable[[], Tokenizer]) -> Tokenizer:
  """Process 0's tokenizer on every process. Training is not reproducible across processes
  (see load_or_train) and hosts need not share a disk, so process 0 makes it and sends it."""
  if jax.process_count() == 1:
    return make()
  payload = make().to_str().encode() if jax.process_index() == 0 else b""
  length = int(multihost_utils.broadcast_one_to_all(np.int64(len(payload))))
  buffer = np.frombuffer(payload, np.uint8) if payload else np.zeros(length, np.uint8)
  buffer = np.asarray(multihost_utils.broadcast_one_to_all(buffer))
  return Tokenizer.from_str(buffer.tobytes().decode())


def tokenizer_hash(tok: Tokenizer) -> str:
  return hashlib.sha256(tok.to_str().encode()).hexdigest()[:16]


def special_tokens(tok: Tokenizer) -> SpecialTokens:
  ids = {name: tok.token_to_id(name) for name in SPECIALS}
  missing = [name for name, i in ids.items() if i is None]
  if missing:
    raise ValueError(f"tokenizer lacks special tokens {missing}; jaxlm needs {SPECIALS}")
  return SpecialTokens(pad=ids[PAD], mask=ids[MASK], special_ids=tuple(sorted(ids.values())),
                       vocab_in_use=tok.get_vocab_size(), word_flags=token_classes.word_flags(tok))
