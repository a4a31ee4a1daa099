"""Next-sentence rows, built as BERT's create_pretraining_data builds them: the layout, the
token types, half the pairs true continuations, and rows that are a pure function of the seed."""

from __future__ import annotations

import numpy as np
import pytest

from jaxlm.data import token_classes, tokenizer
from jaxlm.data.sentence_pairs import NEXT, RANDOM, pair_rows, split_sentences
from jaxlm.data.special_tokens import trained_layout

SPECIAL = trained_layout(4096)
CLS, SEP = 2, 3
T = 64
END = 5  # the one sentence-ending token of the synthetic vocabulary


def _documents(n_docs=120, sentences=16, seed=0):
  """Document d uses ids 100 * (d + 1) + 10 + 0..89 only, so a token says which document and,
  with its position, where in it; sentences of 3-12 tokens, each closed by END."""
  rng = np.random.default_rng(seed)
  docs = []
  for d in range(n_docs):
    parts = []
    counter = 0
    for _ in range(sentences):
      n = int(rng.integers(3, 13))
      ids = 100 * (d + 1) + 10 + (counter + np.arange(n)) % 90
      counter += n
      parts += [ids, [END]]
    docs.append(np.concatenate(parts + [[SEP]]).astype(np.int32))
  return docs


def _ends():
  ends = np.zeros(100_000, bool)
  ends[END] = True
  return ends


def _pairs(seed=0, docs=None):
  return pair_rows(docs or _documents(), T, SPECIAL, CLS, SEP, _ends(), seed=seed)


def _split(row_tokens, row_types):
  real = row_tokens != SPECIAL.pad
  ids = row_tokens[real]
  seps = np.flatnonzero(ids == SEP)
  return ids, row_types[real], seps


def test_layout_and_token_types():
  rows = _pairs()
  for tokens, types, seg, pos in zip(rows.tokens, rows.token_types, rows.segment_ids,
                                     rows.positions):
    ids, real_types, seps = _split(tokens, types)
    assert ids[0] == CLS and ids[-1] == SEP and len(seps) == 2  # [CLS] A [SEP] B [SEP]
    a_len = seps[0] - 1
    assert a_len >= 1 and seps[1] - seps[0] - 1 >= 1  # both sides non-empty
    np.testing.assert_array_equal(real_types, (np.arange(len(ids)) > seps[0]).astype(int))
    assert not types[len(ids):].any()  # padding is type 0
    np.testing.assert_array_equal(seg, np.arange(T) < len(ids))
    np.testing.assert_array_equal(pos[:len(ids)], np.arange(len(ids)))


def test_half_the_pairs_are_true_continuations():
  rows = _pairs()
  labels = rows.nsp_labels
  n = len(labels)
  assert n > 300
  assert abs(np.mean(labels == RANDOM) - 0.5) < 4 * np.sqrt(0.25 / n)
  for tokens, types, label in zip(rows.tokens, rows.token_types, labels):
    ids, _, seps = _split(tokens, types)
    a, b = ids[1:seps[0]], ids[seps[0] + 1:seps[1]]
    a, b = a[a != END], b[b != END]
    a_doc, b_doc = set(a // 100), set(b // 100)
    assert len(a_doc) == 1 and len(b_doc) == 1  # each side from one document
    if label == NEXT:
      assert a_doc == b_doc
      # B continues A: its tokens come later in the document (ids count up within a document,
      # modulo 90, and a row spans fewer than 90 tokens).
      gap = (b[0] - a[-1]) % 90
      assert 0 < gap < 60
    else:
      assert a_doc != b_doc


def test_some_rows_are_short_as_in_bert():
  rows = _pairs()
  lengths = (rows.segment_ids > 0).sum(1)
  assert lengths.max() <= T
  assert np.mean(lengths < T // 2) > 0.02  # short_seq_prob = 0.1 of documents aim short


def test_rows_are_a_function_of_the_seed():
  a, b, c = _pairs(seed=1), _pairs(seed=1), _pairs(seed=2)
  for field in ("tokens", "token_types", "nsp_labels"):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  assert not np.array_equal(a.nsp_labels, c.nsp_labels)
  batch = a.batch(np.arange(4))
  assert batch["token_types"].shape == (4, T) and batch["nsp_labels"].shape == (4,)


def test_one_document_is_refused():
  with pytest.raises(ValueError, match="at least 2 documents"):
    _pairs(docs=_documents(1))


def test_sentences_of_a_trained_tokenizer():
  text = "One sentence. Two here! And three?\nA line without a stop\nFour"
  tok = tokenizer.train_tokenizer("bpe", [text] * 50, 300)
  ids = np.asarray(tok.encode(text, add_special_tokens=False).ids, np.int32)
  sentences = split_sentences(ids, token_classes.sentence_ends(tok), max_len=100)
  texts = [tok.decode(s.tolist()) for s in sentences]
  assert "".join(texts) == text
  assert [t.strip() for t in texts] == ["One sentence.", "Two here!", "And three?",
                                        "A line without a stop", "Four"]
  assert [len(s) for s in split_sentences(ids, np.zeros(1000, bool), max_len=4)][:-1] == \
    [4] * (len(ids) // 4)  # no sentence ends: row-sized pieces

