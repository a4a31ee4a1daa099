"""Reading, splitting, packing and batching local text."""

import numpy as np
import pytest

from jaxlm import text_data, tokenizer
from jaxlm.config import ConfigError


def test_gutenberg_header_and_footer_are_stripped():
  text = ("The Project Gutenberg EBook of X\nlicence blah\n"
          "*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nIt was a dark night.\n\n"
          "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nmore licence\n")
  assert text_data.strip_gutenberg(text) == "It was a dark night."
  assert text_data.strip_gutenberg("plain text\n") == "plain text"


def test_the_default_corpus_is_embedded_and_stripped():
  files = text_data.source_files("default")
  assert len(files) >= 50
  docs = text_data.read_documents(files)
  assert not any("PROJECT GUTENBERG" in d[:2000].upper() for d in docs.values())
  train, heldout = text_data.split_documents(docs, 0.05)
  assert heldout and len(train) + len(heldout) == len(docs)
  assert text_data.split_documents(docs, 0.05) == (train, heldout)  # deterministic


def test_bad_sources_fail_with_one_line(tmp_path):
  with pytest.raises(text_data.DataError, match="does not exist"):
    text_data.source_files(f"text:{tmp_path}/missing")
  (tmp_path / "empty").mkdir()
  with pytest.raises(text_data.DataError, match="holds no files"):
    text_data.source_files(f"text:{tmp_path}/empty")
  (tmp_path / "blank.txt").write_text("  \n")
  with pytest.raises(text_data.DataError, match="every file is empty"):
    text_data.read_documents(text_data.source_files(f"text:{tmp_path}/blank.txt"))
  (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
  with pytest.warns(UserWarning, match="not UTF-8"):
    assert text_data.read_documents([tmp_path / "latin1.txt"]) == {
      str(tmp_path / "latin1.txt"): "caf\ufffd"}
  with pytest.raises(ConfigError, match="unknown scheme"):
    text_data.source_files("hdfs://x")


def test_packing_marks_documents_and_restarts_positions():
  docs = [np.arange(1, 6), np.arange(11, 14), np.arange(21, 30)]  # 5 + 3 + 9 = 17 tokens
  rows = text_data.pack([d.astype(np.int32) for d in docs], seq_len=8, pad_id=0)
  np.testing.assert_array_equal(rows.tokens.ravel()[:17], np.concatenate(docs))
  np.testing.assert_array_equal(rows.segment_ids, [
    [1, 1, 1, 1, 1, 2, 2, 2],
    [1, 1, 1, 1, 1, 1, 1, 1],
    [1, 0, 0, 0, 0, 0, 0, 0]])
  np.testing.assert_array_equal(rows.positions, [
    [0, 1, 2, 3, 4, 0, 1, 2],
    [0, 1, 2, 3, 4, 5, 6, 7],  # the third document restarts at the row boundary
    [0, 0, 0, 0, 0, 0, 0, 0]])


def test_batches_are_seeded_reshuffled_per_epoch_and_cover_every_row():
  rows = text_data.pack([np.arange(1, 65, dtype=np.int32)], seq_len=4, pad_id=0)  # 16 rows
  first = [b["tokens"][:, 0] for b, _ in zip(text_data.batches(rows, 4, seed=1), range(8))]
  again = [b["tokens"][:, 0] for b, _ in zip(text_data.batches(rows, 4, seed=1), range(8))]
  other = [b["tokens"][:, 0] for b, _ in zip(text_data.batches(rows, 4, seed=2), range(8))]
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)
  epoch1, epoch2 = np.concatenate(first[:4]), np.concatenate(first[4:])
  assert sorted(epoch1) == sorted(epoch2) == list(range(1, 65, 4))
  assert not np.array_equal(epoch1, epoch2)


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_tokenizers_train_offline_with_the_specials_first(kind, shared_data, tmp_path):
  text = (shared_data / "corpus/tinyshakespeare/input.txt").read_text()[:200_000]
  tok = tokenizer.load_or_train(tmp_path, kind, [text], vocab_size=1000)
  special = tokenizer.special_tokens(tok)
  assert special.special_ids == (0, 1, 2, 3, 4) and special.mask == 4
  assert 500 < tok.get_vocab_size() <= 1000
  ids = tok.encode("First Citizen: speak, speak.").ids
  assert tok.decode(ids).lower().replace(" ", "") == "firstcitizen:speak,speak."
  again = tokenizer.load_or_train(tmp_path, kind, ["ignored"], vocab_size=10)  # reloaded
  assert tokenizer.tokenizer_hash(again) == tokenizer.tokenizer_hash(tok)
