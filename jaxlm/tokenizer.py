"""Tokenizers with Hugging Face `tokenizers`: trained offline (byte-level BPE or WordPiece) or
loaded from tokenizer.json, BERT's vocab.txt or GPT-2's vocab.json + merges.txt.

Trained ones carry the five special tokens at ids 0-4; loaded ones get any that are missing
appended. One tokenizer serves every objective of a comparison. It is saved as
WORKDIR/tokenizer.json, reused on restart, and its hash is recorded with the run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable

import jax
import numpy as np

from tokenizers import (Tokenizer, decoders, implementations, models, normalizers,
                        pre_tokenizers, trainers)

from jaxlm.config import DataError
from jaxlm.objectives import SpecialTokens

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIALS = [PAD, UNK, CLS, SEP, MASK]


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


def load_file(path: str | Path) -> Tokenizer:
  """An existing tokenizer: tokenizer.json, BERT's vocab.txt, or GPT-2's vocab.json + merges.txt
  (a directory or either file). Missing jaxlm special tokens are appended to the vocabulary."""
  path = Path(path)
  if path.is_dir():
    candidates = [path / "tokenizer.json", path / "vocab.json", path / "vocab.txt"]
    found = [c for c in candidates if c.exists()]
    if not found:
      raise DataError(f"config.data.tokenizer={str(path)!r}: holds no tokenizer.json, "
                       "vocab.json + merges.txt, or vocab.txt")
    path = found[0]
  if path.name == "tokenizer.json" or path.suffix == ".json" and path.name != "vocab.json":
    tok = Tokenizer.from_file(str(path))
  elif path.name in ("vocab.json", "merges.txt"):
    vocab, merges = path.parent / "vocab.json", path.parent / "merges.txt"
    if not merges.exists() or not vocab.exists():
      raise DataError(f"config.data.tokenizer={str(path)!r}: GPT-2 tokenizers need vocab.json "
                       "and merges.txt side by side")
    tok = implementations.ByteLevelBPETokenizer(str(vocab), str(merges))._tokenizer
  elif path.suffix == ".txt":
    words = path.read_text(encoding="utf-8").split()
    # Cased BERT vocabularies hold capitalised words; uncased ones never do.
    cased = any(w[:1].isupper() for w in words if w.isalpha())
    tok = implementations.BertWordPieceTokenizer(str(path), lowercase=not cased)._tokenizer
  else:
    raise DataError(f"config.data.tokenizer={str(path)!r}: expected tokenizer.json, vocab.txt, "
                     "or vocab.json + merges.txt")
  missing = [t for t in SPECIALS if tok.token_to_id(t) is None]
  if missing:
    tok.add_special_tokens(missing)
  return tok


def load_or_train(workdir: Path, spec: str, texts: list[str], vocab_size: int,
                  cache: Path | None = None) -> Tokenizer:
  """The run's tokenizer: WORKDIR/tokenizer.json if the run has one, else trained (`bpe`,
  `wordpiece`) or loaded (a path), then saved there so every restart uses the same one.

  `tokenizers` breaks ties between equally frequent merges in hash-map order, so two trainings
  on the same text can differ. Trained tokenizers are therefore kept in `cache`, keyed by
  (kind, vocabulary size, text): every run on the same data gets the very same tokenizer.
  """
  path = Path(workdir) / "tokenizer.json"
  if path.exists():
    return Tokenizer.from_file(str(path))
  if spec in ("bpe", "wordpiece"):
    digest = hashlib.sha256(f"{spec}:{vocab_size}:{len(texts)}".encode())
    for text in texts:
      digest.update(hashlib.sha256(text.encode("utf-8", "replace")).digest())
    cached = cache / f"{spec}-{vocab_size}-{digest.hexdigest()[:24]}.json" if cache else None
    if cached is not None and cached.exists():
      tok = Tokenizer.from_file(str(cached))
    else:
      tok = train_tokenizer(spec, texts, vocab_size)
      if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tok.save(str(tmp))
        os.replace(tmp, cached)
  else:
    tok = load_file(spec)
  path.parent.mkdir(parents=True, exist_ok=True)
  tok.save(str(path))
  return tok


def from_process_zero(make: Callable[[], Tokenizer]) -> Tokenizer:
  """Process 0's tokenizer on every process. Training is not reproducible across processes
  (see load_or_train) and hosts need not share a disk, so process 0 makes it and sends it."""
  if jax.process_count() == 1:
    return make()
  from jax.experimental import multihost_utils
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
                       vocab_in_use=tok.get_vocab_size())
