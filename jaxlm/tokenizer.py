"""Tokenizers trained offline with Hugging Face `tokenizers`: byte-level BPE or WordPiece.

Both carry the same five special tokens at ids 0-4, so every objective of a comparison can share
one tokenizer. The tokenizer is saved as WORKDIR/tokenizer.json and reused on restart.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

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


def load_or_train(workdir: Path, kind: str, texts: Iterable[str], vocab_size: int) -> Tokenizer:
  path = Path(workdir) / "tokenizer.json"
  if path.exists():
    return Tokenizer.from_file(str(path))
  tok = train_tokenizer(kind, texts, vocab_size)
  path.parent.mkdir(parents=True, exist_ok=True)
  tok.save(str(path))
  return tok


def tokenizer_hash(tok: Tokenizer) -> str:
  return hashlib.sha256(tok.to_str().encode()).hexdigest()[:16]


def special_tokens(tok: Tokenizer) -> SpecialTokens:
  ids = {name: tok.token_to_id(name) for name in SPECIALS}
  missing = [name for name, i in ids.items() if i is None]
  if missing:
    raise ValueError(f"tokenizer lacks special tokens {missing}; jaxlm needs {SPECIALS}")
  return SpecialTokens(pad=ids[PAD], mask=ids[MASK], special_ids=tuple(sorted(ids.values())),
                       vocab_in_use=tok.get_vocab_size())
