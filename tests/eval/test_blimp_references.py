"""BLiMP's references and its breakdown by pair kind, on a tiny random CLM: the unigram and
bigram references are the jaxlm.eval.ngram models of train_ids, the kinds partition the pairs,
and the report shows both reference rows and the by-kind table."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from helpers.model import model, tiny_config

from jaxlm.api import Pretrained
from jaxlm.data import tokenizer as tokenization
from jaxlm.data.sources.text import CORPUS_DIR
from jaxlm.eval import blimp_data
from jaxlm.eval.ngram import BigramModel, UnigramModel
from jaxlm.eval.tasks.blimp import BIGRAM, PAIR_KINDS, UNIGRAM, BlimpTask, pair_kind


def test_pair_kind_by_hand():
  assert pair_kind([1, 2], [1, 2, 3]) == "good_shorter"
  assert pair_kind([1, 2, 3, 4], [5, 6]) == "good_longer"
  assert pair_kind([1, 2, 3], [1, 2, 4]) == "same_length"
  assert pair_kind([1, 2, 3], [3, 1, 2]) == "same_tokens"  # another order
  assert pair_kind([1, 1, 2], [1, 2, 2]) == "same_length"  # same set, not the same multiset
  assert pair_kind([7, 8], [7, 8]) == "same_tokens"  # identical ids count as the same tokens
  assert pair_kind([], []) == "same_tokens"
  assert list(PAIR_KINDS) == ["good_shorter", "good_longer", "same_length", "same_tokens"]


@pytest.fixture(scope="module")
def setup():
  text = gzip.decompress((CORPUS_DIR / "inaugural" / "1861-Lincoln.txt.gz").read_bytes())
  text = text.decode("utf-8")
  tok = tokenization.train_tokenizer("bpe", [text], 320)
  config = tiny_config("clm", vocab_size=384, max_seq_len=128)
  lm = Pretrained(model=model(config), tokenizer=tok, config=config)
  train_ids = np.asarray(tok.encode(text, add_special_tokens=False).ids, np.int64)
  return lm, train_ids, BlimpTask().evaluate(lm, sample=1, train_ids=train_ids)


def _ids(tok, sentences):
  return [e.ids for e in tok.encode_batch(sentences, add_special_tokens=False)]


def test_references_are_the_ngram_models_of_the_training_ids(setup):
  lm, train_ids, result = setup
  pairs = blimp_data.load_pairs(None, 1)
  assert result["items"] == len(pairs) == 67
  assert list(result["references"]) == [UNIGRAM, BIGRAM]
  good, bad = _ids(lm.tokenizer, [p.good for p in pairs]), _ids(lm.tokenizer, [p.bad for p in pairs])
  vocab = lm.tokenizer.get_vocab_size()
  for name, ngram in ((UNIGRAM, UnigramModel.fit([train_ids], vocab)),
                      (BIGRAM, BigramModel.fit(train_ids, vocab))):
    want = blimp_data.summarize(pairs, ngram.score_many(good), ngram.score_many(bad))
    ref = result["references"][name]
    assert set(ref) == {"overall", "groups", "correct"}
    assert ref["correct"] == want.correct.tolist()
    assert ref["overall"] == pytest.approx(want.overall)
    assert ref["groups"] == dict(want.per_phenomenon)


def test_by_length_partitions_the_pairs(setup):
  lm, _, result = setup
  by_length = result["by_length"]
  counts = by_length["pairs"]
  assert list(counts) == list(PAIR_KINDS)
  assert sum(counts.values()) == result["items"]
  kinds = np.asarray(by_length["kinds"])
  assert [int((kinds == k).sum()) for k in PAIR_KINDS] == list(counts.values())
  assert set(by_length["references"]) == {UNIGRAM, BIGRAM}
  for correct, per_kind in [(result["correct"], by_length["model"])] + [
      (result["references"][n]["correct"], by_length["references"][n]) for n in (UNIGRAM, BIGRAM)]:
    assert set(per_kind) == {k for k, n in counts.items() if n}
    for kind, cell in per_kind.items():
      assert cell["accuracy"] == pytest.approx(100 * np.mean(np.asarray(correct)[kinds == kind]))
      assert len(cell["interval"]) == 2
  if counts["same_tokens"]:  # the unigram ties exactly on every reordering
    same = np.asarray(result["references"][UNIGRAM]["correct"])[kinds == "same_tokens"]
    assert (same == 0.5).all()


def test_render_shows_both_references_and_the_kinds(setup):
  lm, _, result = setup
  text = "\n".join(BlimpTask().render({"clm": result}))
  assert f"| {UNIGRAM} | 67 |" in text and f"| {BIGRAM} | 67 |" in text
  assert "| system | good shorter | good longer | same length | same tokens, another order |" in text
  counts = result["by_length"]["pairs"]
  assert "| pairs | " + " | ".join(str(n) for n in counts.values()) + " |" in text
  by_kind = text.split("Accuracy by pair kind")[1]
  assert "| clm |" in by_kind and f"| {UNIGRAM} |" in by_kind and f"| {BIGRAM} |" in by_kind
  assert "references, not floors" in text


def test_without_train_ids_or_by_length(setup):
  lm, _, result = setup
  bare = BlimpTask().evaluate(lm, sample=1, groups=("adjunct_island", "anaphor_gender_agreement"))
  assert bare["references"] == {} and bare["by_length"]["references"] == {}
  assert sum(bare["by_length"]["pairs"].values()) == bare["items"] == 2
  # A result written before the breakdown existed still renders, without its table.
  old = {k: v for k, v in result.items() if k != "by_length"}
  text = "\n".join(BlimpTask().render({"clm": old}))
  assert f"| {BIGRAM} |" in text and "Accuracy by pair kind" not in text


def test_a_smaller_sample_is_the_subset_of_a_larger_one_s_scores(setup):
  lm, train_ids, at_one = setup
  at_two = BlimpTask().evaluate(lm, sample=2, train_ids=train_ids)
  sub = BlimpTask().subset(at_two, 2, 1)
  assert sub == {"items": 67, "overall": at_one["overall"], "interval": at_one["interval"],
                 "references": {name: ref["overall"]
                                for name, ref in at_one["references"].items()}}
  assert BlimpTask().subset(at_one, 1, 2) is None  # the larger sample's pairs are not all there
  # Every pair of "all" (sample 0) is there; the groups narrow both sides alike.
  groups = ("adjunct_island",)
  every = BlimpTask().evaluate(lm, sample=0, groups=groups)
  assert BlimpTask().subset(every, 0, 2, groups)["overall"] == pytest.approx(
    BlimpTask().evaluate(lm, sample=2, groups=groups)["overall"])
