"""Reading, splitting, packing and batching local text."""

import numpy as np
import pytest

from jaxlm.config import ConfigError
from jaxlm.data import packing, pipeline, tokenizer
from jaxlm.data.sources import text as text_data


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
  rows = packing.pack([d.astype(np.int32) for d in docs], seq_len=8, pad_id=0)
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
  rows = packing.pack([np.arange(1, 65, dtype=np.int32)], seq_len=4, pad_id=0)  # 16 rows
  first = [b["tokens"][:, 0] for b, _ in zip(pipeline.batches(rows, 4, seed=1), range(8))]
  again = [b["tokens"][:, 0] for b, _ in zip(pipeline.batches(rows, 4, seed=1), range(8))]
  other = [b["tokens"][:, 0] for b, _ in zip(pipeline.batches(rows, 4, seed=2), range(8))]
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)
  epoch1, epoch2 = np.concatenate(first[:4]), np.concatenate(first[4:])
  assert sorted(epoch1) == sorted(epoch2) == list(range(1, 65, 4))
  assert not np.array_equal(epoch1, epoch2)


@pytest.mark.parametrize("kind", ["bpe", "wordpiece"])
def test_tokenizers_train_offline_with_the_specials_first(kind, corpus, tmp_path):
  text = (corpus / "tinyshakespeare/input.txt").read_text()[:200_000]
  tok = tokenizer.load_or_train(tmp_path, kind, [text], vocab_size=1000)
  special = tokenizer.special_tokens(tok)
  assert special.special_ids == (0, 1, 2, 3, 4) and special.mask == 4
  assert 500 < tok.get_vocab_size() <= 1000
  ids = tok.encode("First Citizen: speak, speak.").ids
  assert tok.decode(ids).lower().replace(" ", "") == "firstcitizen:speak,speak."
  again = tokenizer.load_or_train(tmp_path, kind, ["ignored"], vocab_size=10)  # reloaded
  assert tokenizer.tokenizer_hash(again) == tokenizer.tokenizer_hash(tok)


def test_pad_mode_gives_each_document_its_own_rows():
  docs = [np.arange(1, 6, dtype=np.int32), np.arange(11, 21, dtype=np.int32)]  # 5 and 10 tokens
  rows = packing.pad(docs, seq_len=4, pad_id=0)
  np.testing.assert_array_equal(rows.tokens, [
    [1, 2, 3, 4], [5, 0, 0, 0], [11, 12, 13, 14], [15, 16, 17, 18], [19, 20, 0, 0]])
  np.testing.assert_array_equal(rows.segment_ids, [
    [1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]])
  assert np.all(rows.segment_ids <= 1)  # never two documents in a row


def test_packing_loses_no_token_on_real_text(corpus):
  texts = list(text_data.read_documents(sorted((corpus / "inaugural").glob("18*.txt.gz")))
               .values())
  tok = tokenizer.train_tokenizer("bpe", texts[:1], 500)
  docs = pipeline.tokenize(tok, texts, sep_id=3)
  for seq_len in (7, 64, 1000):
    rows = packing.pack(docs, seq_len, pad_id=0)
    real = rows.segment_ids > 0
    np.testing.assert_array_equal(rows.tokens[real], np.concatenate(docs))
    # Every document start is a segment start with position 0.
    starts = np.flatnonzero(np.diff(rows.segment_ids.ravel(), prepend=-1) != 0)
    assert set(np.flatnonzero(rows.positions.ravel() == 0)) >= set(starts[real.ravel()[starts]])


def test_host_shards_are_disjoint_and_cover_each_global_batch():
  rows = packing.pack([np.arange(1, 257, dtype=np.int32)], seq_len=4, pad_id=0)  # 64 rows
  whole = [b["tokens"][:, 0] for b, _ in zip(pipeline.batches(rows, 8, seed=3), range(16))]
  hosts = [[b["tokens"][:, 0] for b, _ in zip(
    pipeline.batches(rows, 8, seed=3, process_index=i, process_count=4), range(16))]
    for i in range(4)]
  for step in range(16):
    parts = [set(h[step]) for h in hosts]
    assert all(len(p) == 2 for p in parts)
    assert set().union(*parts) == set(whole[step])  # the same global batch, split four ways
    assert sum(map(len, parts)) == len(set().union(*parts))  # disjoint


def test_a_restored_iterator_yields_the_same_following_batches():
  rows = packing.pack([np.arange(1, 129, dtype=np.int32)], seq_len=4, pad_id=0)
  it = iter(pipeline.batches(rows, 4, seed=0))
  for _ in range(11):  # into the second epoch
    next(it)
  state = it.get_state()
  expected = [next(it)["tokens"] for _ in range(5)]
  fresh = iter(pipeline.batches(rows, 4, seed=0))
  fresh.set_state(state)
  np.testing.assert_array_equal([next(fresh)["tokens"] for _ in range(5)], expected)


def test_the_same_text_always_gets_the_same_tokenizer(corpus, tmp_path):
  text = (corpus / "tinyshakespeare/input.txt").read_text()[:100_000]
  for kind in ("bpe", "wordpiece"):
    runs = [tokenizer.load_or_train(tmp_path / f"{kind}-run{i}", kind, [text], 800,
                                    cache=tmp_path / "cache") for i in range(3)]
    assert len({tokenizer.tokenizer_hash(t) for t in runs}) == 1
    other = tokenizer.load_or_train(tmp_path / f"{kind}-other", kind, [text[:50_000]], 800,
                                    cache=tmp_path / "cache")
    assert tokenizer.tokenizer_hash(other) != tokenizer.tokenizer_hash(runs[0])


def test_existing_tokenizer_files_load(tmp_path, corpus):
  text = (corpus / "tinyshakespeare/input.txt").read_text()[:50_000]
  # GPT-2 layout: vocab.json + merges.txt, no jaxlm specials -> they are appended.
  from tokenizers import implementations
  gpt2 = implementations.ByteLevelBPETokenizer()
  gpt2.train_from_iterator([text], vocab_size=400, show_progress=False)
  gpt2.save_model(str(tmp_path))
  tok = tokenizer.load_file(tmp_path / "vocab.json")
  special = tokenizer.special_tokens(tok)
  assert min(special.special_ids) >= 256  # appended after the byte alphabet
  assert tok.decode(tok.encode("To be, or not").ids) == "To be, or not"
  # BERT layout: vocab.txt (cased here, so it must not lowercase).
  (tmp_path / "bert").mkdir()
  words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "To", "be", ",", "or", "not", "##t"]
  (tmp_path / "bert/vocab.txt").write_text("\n".join(words) + "\n")
  bert = tokenizer.load_file(tmp_path / "bert/vocab.txt")
  assert bert.encode("To be, or not").tokens == ["[CLS]", "To", "be", ",", "or", "not", "[SEP]"]
  # A run's own tokenizer.json.
  tok.save(str(tmp_path / "tokenizer.json"))
  assert tokenizer.tokenizer_hash(tokenizer.load_file(tmp_path / "tokenizer.json")) == \
    tokenizer.tokenizer_hash(tok)


def test_tokenization_is_cached_on_disk(tmp_path, monkeypatch):
  tok = tokenizer.train_tokenizer("bpe", ["some text to learn from " * 50], 300)
  texts = ["a first document", "and a second one"]
  first = pipeline.cached_tokenize(tok, texts, 3, 0, tmp_path)
  assert len(list(tmp_path.glob("*.npz"))) == 1

  def fail(*args):
    raise AssertionError("tokenized again")

  monkeypatch.setattr(pipeline, "tokenize", fail)
  again = pipeline.cached_tokenize(tok, texts, 3, 0, tmp_path)
  assert all(np.array_equal(a, b) for a, b in zip(first, again))
