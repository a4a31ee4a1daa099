"""The one special-token layout: names, and the ids the objectives and benchmarks need.

Trained tokenizers put the five specials at ids 0-4 in this order; loaded ones get any that are
missing appended, so their ids are read from the tokenizer (`jaxlm.data.tokenizer`). A leaf
module: it imports nothing from jaxlm.
"""

from __future__ import annotations

import dataclasses

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIALS = [PAD, UNK, CLS, SEP, MASK]  # ids 0-4 of a trained tokenizer
FIRST_ORDINARY_ID = len(SPECIALS)
# Word-boundary flags per token id (`SpecialTokens.word_flags`, set by jaxlm.data.token_classes):
STARTS_WORD = 1  # this token begins a word
ENDS_WORD = 2  # the token after this one begins a word (it ends in whitespace, e.g. 'Ċ')


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
  """Token ids the objectives must know; hashable, so it can be a static jit argument."""

  pad: int
  mask: int
  special_ids: tuple[int, ...]  # never masked, never drawn as random replacements
  vocab_in_use: int  # ids >= this are padding rows of the embedding table
  # Per id, STARTS_WORD | ENDS_WORD flags (`jaxlm.data.token_classes`), read by whole-word and
  # span masking; empty: every token is a word of its own.
  word_flags: bytes = b""


def trained_layout(vocab_in_use: int) -> SpecialTokens:
  """The ids of a tokenizer jaxlm trained (specials first): synthetic data and tests use it."""
  return SpecialTokens(pad=SPECIALS.index(PAD), mask=SPECIALS.index(MASK),
                       special_ids=tuple(range(len(SPECIALS))), vocab_in_use=vocab_in_use)
