"""Whole-word and span masking: units are never split, the budget is kept, span lengths follow
SpanBERT's distribution, and word boundaries read from real tokenizers are the words of the text."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers.model import SPECIAL, tiny_config

from jaxlm.config import replace_at
from jaxlm.data import token_classes, tokenizer
from jaxlm.data.special_tokens import STARTS_WORD
from jaxlm.objectives.masking import mask_for_mlm, span_starts, word_starts

B, T = 256, 96
# Synthetic vocabulary: ids divisible by 4 start a word, the rest continue one.
FLAGS = bytes(STARTS_WORD * (i % 4 == 0) for i in range(256))
SPECIAL_WORDS = dataclasses.replace(SPECIAL, word_flags=FLAGS)


def _rows(seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(5, 256, (B, T)).astype(np.int32)
  tokens[:, 0] = 2  # [CLS]
  tokens[:, 40] = 3  # [SEP] inside
  seg = np.ones((B, T), np.int32)
  seg[:, -10:] = 0
  tokens[:, -10:] = 0
  eligible = (seg > 0) & ~np.isin(tokens, SPECIAL.special_ids)
  return tokens, eligible


def _reference_words(tokens, eligible):
  """Word index per eligible token, computed by a plain loop (-1 elsewhere)."""
  words = np.full(tokens.shape, -1)
  for b in range(tokens.shape[0]):
    w = -1
    for t in range(tokens.shape[1]):
      if not eligible[b, t]:
        continue
      if tokens[b, t] % 4 == 0 or t == 0 or not eligible[b, t - 1]:
        w += 1
      words[b, t] = w
  return words


def _masked(masking, **mlm):
  cfg = tiny_config("mlm")
  cfg = replace_at(cfg, "mlm", dataclasses.replace(cfg.mlm, masking=masking, **mlm))
  tokens, eligible = _rows()
  out = jax.jit(lambda k: mask_for_mlm(k, jnp.asarray(tokens), jnp.asarray(eligible), cfg,
                                       SPECIAL_WORDS))(jax.random.key(0))
  inputs, pos, targets, weights = map(np.asarray, out)
  picked = np.zeros_like(eligible)
  for row in range(B):
    picked[row, pos[row][weights[row]]] = True
  assert weights.sum() == picked.sum()  # positions are distinct
  return tokens, eligible, inputs, picked, cfg


def test_word_starts_match_a_loop():
  tokens, eligible = _rows()
  starts = np.asarray(word_starts(jnp.asarray(tokens), jnp.asarray(eligible), FLAGS))
  words = _reference_words(tokens, eligible)
  expected = eligible & (words != np.pad(words, ((0, 0), (1, 0)), constant_values=-1)[:, :-1])
  np.testing.assert_array_equal(starts, expected)


@pytest.mark.parametrize("masking", ["whole_word", "span"])
def test_units_are_whole_and_the_budget_is_kept(masking):
  tokens, eligible, inputs, picked, cfg = _masked(masking)
  words = _reference_words(tokens, eligible)
  budget = np.round(cfg.mlm.mask_rate * eligible.sum(1))
  for row in range(B):
    masked_words = set(words[row][picked[row]])
    whole = np.isin(words[row], list(masked_words)) & eligible[row]
    np.testing.assert_array_equal(picked[row], whole)  # a word is masked entirely or not at all
  count = picked.sum(1)
  assert np.all(count <= budget)
  assert not np.any(picked & ~eligible)
  np.testing.assert_array_equal(inputs[~picked], tokens[~picked])
  # Short of the budget by less than one unit (a word is at most ~12 tokens here, a span 10 words).
  assert count.mean() > budget.mean() * (0.9 if masking == "whole_word" else 0.75)


def test_token_masking_keeps_the_exact_count():
  tokens, eligible, _, picked, cfg = _masked("token")
  np.testing.assert_array_equal(picked.sum(1), np.round(cfg.mlm.mask_rate * eligible.sum(1)))


def test_span_lengths_follow_the_truncated_geometric():
  words = jnp.ones((64, 512), bool)  # every token a word: spans in tokens = spans in words
  starts = np.asarray(span_starts(jax.random.key(3), words, 0.2, 10))
  lengths = np.diff(np.flatnonzero(starts.reshape(-1)))
  lengths = lengths[lengths > 0]
  k = np.arange(1, 11)
  p_k = 0.2 * 0.8 ** (k - 1) / (1 - 0.8 ** 10)
  assert lengths.max() <= 10
  assert abs(lengths.mean() - (k * p_k).sum()) < 0.1  # 3.80 words (SpanBERT's mean)
  observed = np.bincount(lengths, minlength=11)[1:] / len(lengths)
  np.testing.assert_allclose(observed, p_k, atol=0.02)


def test_spans_share_one_replacement_draw():
  tokens, eligible, inputs, picked, _ = _masked("span", mask_token_prob=0.5,
                                                random_token_prob=0.0)
  starts = np.asarray(span_starts(jax.random.split(jax.random.split(jax.random.key(0), 3)[0],
                                                   3)[0],
                                  word_starts(jnp.asarray(tokens), jnp.asarray(eligible), FLAGS),
                                  0.2, 10))
  spans = np.cumsum(starts, axis=1)
  mixed = 0
  for row in range(B):
    for s in set(spans[row][picked[row]]):
      in_span = picked[row] & (spans[row] == s)
      as_mask = inputs[row][in_span] == SPECIAL.mask
      mixed += as_mask.any() and not as_mask.all()
  assert mixed == 0


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_word_flags_of_trained_tokenizers_are_the_texts_words(kind):
  text = ("The quick brown fox, jumping over lazy dogs, was unbelievably quick.\n\n"
          "Another paragraph follows: it has punctuation; hyphen-ated words and numbers 12345.")
  tok = tokenizer.train_tokenizer(kind, [text * 20], 300)
  flags = np.frombuffer(token_classes.word_flags(tok), np.uint8)
  enc = tok.encode(text, add_special_tokens=False)
  ids = np.asarray(enc.ids)[None]
  starts = np.asarray(word_starts(jnp.asarray(ids), jnp.ones(ids.shape, bool), flags.tobytes()))[0]
  if kind == "wordpiece":  # a word is what BERT's pre-tokenizer splits off (punctuation alone)
    words = enc.word_ids
    expected = [i == 0 or words[i] != words[i - 1] for i in range(len(words))]
  else:  # byte-level BPE: a word starts at whitespace (folded into the token) or after it
    expected = [s == 0 or text[s].isspace() or text[s - 1].isspace() for s, _ in enc.offsets]
  np.testing.assert_array_equal(starts, expected)
