"""What a token is, read once from the tokenizer's vocabulary: where words start (for whole-word
and span masking) and where sentences end (for next-sentence pairs).

Byte-level BPE (GPT-2, RoBERTa) marks a word start by the leading space it folds into the token
('Ġword'); WordPiece (BERT) marks continuations instead ('##ing'). Both are read from the token
strings, so any tokenizer jaxlm loads gets the right boundaries without a flag.
"""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from jaxlm.data.special_tokens import ENDS_WORD, STARTS_WORD

_SENTENCE_END = (".", "!", "?", "\n")


def _pieces(tok: Tokenizer) -> tuple[list[str], list[str]]:
  """Each id's vocabulary string and its decoded text."""
  vocab = tok.get_vocab_size()
  raw = [tok.id_to_token(i) or "" for i in range(vocab)]
  text = tok.decode_batch([[i] for i in range(vocab)], skip_special_tokens=False)
  return raw, text


def word_flags(tok: Tokenizer) -> bytes:
  """STARTS_WORD | ENDS_WORD flags per id, as bytes (hashable, so the step can close over it)."""
  raw, text = _pieces(tok)
  wordpiece = type(tok.model).__name__ == "WordPiece"
  prefix = getattr(tok.model, "continuing_subword_prefix", "##") if wordpiece else None
  flags = np.zeros(len(raw), np.uint8)
  for i, (r, t) in enumerate(zip(raw, text)):
    starts = not r.startswith(prefix) if wordpiece else (t[:1].isspace() or r[:1] in "ĠĊ")
    ends = bool(t) and t[-1:].isspace()
    flags[i] = STARTS_WORD * starts | ENDS_WORD * ends
  return flags.tobytes()


def sentence_ends(tok: Tokenizer) -> np.ndarray:
  """[V] bool: the token closes a sentence (ends with . ! ? or holds a line break)."""
  _, text = _pieces(tok)
  return np.array([t.rstrip(" ").endswith(_SENTENCE_END) or "\n" in t for t in text], bool)
