"""Sentence scorers against a direct, unbatched computation on a tiny random model."""

from __future__ import annotations

import dataclasses
import gzip

import jax
import numpy as np
import pytest
from flax import nnx
from helpers.model import model, tiny_config

from jaxlm import api, scoring
from jaxlm.api import Loaded
from jaxlm.config import ConfigError, DataError
from jaxlm.data import tokenizer as tokenization
from jaxlm.data.sources.text import CORPUS_DIR
from jaxlm.data.special_tokens import CLS, MASK, SEP

SENTENCES = ["The cats sleep.", "A dog barked loudly at the unfamiliar visitor.", "Who left?"]


@pytest.fixture(scope="module")
def tok():
  text = gzip.decompress((CORPUS_DIR / "inaugural" / "1861-Lincoln.txt.gz").read_bytes())
  return tokenization.train_tokenizer("bpe", [text.decode("utf-8")], 320)


def _loaded(objective, tok):
  config = tiny_config(objective, vocab_size=384, max_seq_len=64)
  return Loaded(model=model(config), tokenizer=tok, config=config)


def _log_softmax(x):
  x = x.astype(np.float64)[: 320]
  return x - np.log(np.exp(x - x.max()).sum()) - x.max()


@pytest.mark.parametrize("objective", ["clm", "prefix_lm", "hybrid"])
@pytest.mark.parametrize("doc_start, context", [("cls", CLS), ("none", SEP)])
def test_causal_score_is_the_summed_next_token_log_probability(objective, doc_start, context,
                                                               tok):
  """Scored after the token the run's documents open with ([CLS]); a run made before documents
  opened with a token is scored after [SEP], as it always was."""
  lm = _loaded(objective, tok)
  lm = dataclasses.replace(lm, config=dataclasses.replace(
    lm.config, data=dataclasses.replace(lm.config.data, doc_start=doc_start)))
  got = scoring.sentence_scores(lm, SENTENCES)
  start = tok.token_to_id(context)
  for sentence, score in zip(SENTENCES, got):
    ids = [start] + tok.encode(sentence, add_special_tokens=False).ids
    logits = lm.logits(np.asarray([ids]), 1 if objective == "prefix_lm" else None)[0]
    want = sum(_log_softmax(logits[i])[ids[i + 1]] for i in range(len(ids) - 1))
    assert score == pytest.approx(want, abs=1e-4)


def test_mlm_pll_masks_the_token_and_the_rest_of_its_word(tok):
  lm = _loaded("mlm", tok)
  got = scoring.sentence_scores(lm, SENTENCES)
  mask = tok.token_to_id(MASK)
  for sentence, score in zip(SENTENCES, got):
    enc = tok.encode(sentence, add_special_tokens=False)
    want = 0.0
    for i, target in enumerate(enc.ids):
      row = list(enc.ids)
      for j in range(i, len(row)):
        if j == i or enc.word_ids[j] == enc.word_ids[i]:
          row[j] = mask
      want += _log_softmax(lm.logits(np.asarray([row]))[0, i])[target]
    assert score == pytest.approx(want, abs=1e-4)
  # A word of several tokens is scored with its later pieces hidden, so PLL differs from the
  # token-level variant on such a sentence.
  assert any(len(set(w for w in tok.encode(s, add_special_tokens=False).word_ids)) <
             len(tok.encode(s, add_special_tokens=False).ids) for s in SENTENCES)


def test_mntp_pll_reads_each_token_one_position_earlier_after_the_document_token(tok):
  lm = _loaded("mntp", tok)
  got = scoring.sentence_scores(lm, SENTENCES)
  mask, start = tok.token_to_id(MASK), tok.token_to_id(CLS)
  for sentence, score in zip(SENTENCES, got):
    enc = tok.encode(sentence, add_special_tokens=False)
    want = 0.0
    for i, target in enumerate(enc.ids):
      row = [start] + [mask if j == i or (j > i and enc.word_ids[j] == enc.word_ids[i]) else t
                       for j, t in enumerate(enc.ids)]
      want += _log_softmax(lm.logits(np.asarray([row]))[0, i])[target]  # row[i + 1] is token i
    assert score == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_a_progress_bar_counts_every_scored_row(objective, tok, capsys):
  lm = _loaded(objective, tok)
  quiet = scoring.sentence_scores(lm, SENTENCES)
  assert capsys.readouterr().err == ""
  shown = scoring.sentence_scores(lm, SENTENCES, progress="blimp scoring")
  rows = (len(SENTENCES) if objective == "clm" else
          sum(len(tok.encode(s, add_special_tokens=False).ids) for s in SENTENCES))
  final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
  assert final.startswith("blimp scoring: 100%") and f" {rows}/{rows} " in final, final
  np.testing.assert_array_equal(shown, quiet)


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_a_sentence_past_the_learned_positions_is_one_line(objective, tok):
  config = dataclasses.replace(tiny_config(objective, vocab_size=384), seq_len=8)
  config = dataclasses.replace(config, model=dataclasses.replace(config.model, max_seq_len=12))
  lm = Loaded(model=model(config), tokenizer=tok, config=config)
  with pytest.raises(DataError, match=r"scoring: 1 of 2 sentences are longer than the model's 12 "
                                      r"learned positions \(the longest: \d+ tokens\)"):
    scoring.sentence_scores(lm, ["Who left?", SENTENCES[1]])


def test_the_hybrid_scores_by_mntp_pll_when_asked_and_other_misuse_is_one_line(tok):
  hybrid = _loaded("hybrid", tok)
  as_mntp = Loaded(model=hybrid.model, tokenizer=tok,
                   config=dataclasses.replace(hybrid.config, objective="mntp"))
  pll = scoring.sentence_scores(hybrid, SENTENCES, method="pll")
  np.testing.assert_allclose(pll, scoring.sentence_scores(as_mntp, SENTENCES), rtol=1e-6)
  np.testing.assert_array_equal(
    scoring.sentence_scores(dataclasses.replace(hybrid, scoring="pll"), SENTENCES), pll)
  assert not np.allclose(scoring.sentence_scores(hybrid, SENTENCES), pll)  # auto: causal
  for objective, method, says in (("clm", "pll", "never trained on masked tokens"),
                                   ("mlm", "causal", "which does not generate"),
                                   ("mlm", "best", "allowed: auto, causal, pll")):
    with pytest.raises(DataError, match=says):
      scoring.sentence_scores(_loaded(objective, tok), SENTENCES, method=method)


def _partitions(n):
  """Every split of n sorted lengths into runs of consecutive ones."""
  if n == 0:
    yield []
    return
  for first in range(1, n + 1):
    for rest in _partitions(n - first):
      yield [first] + rest


@pytest.mark.parametrize("compiled", [set(), {(10, True), (30, True)}, {(4, False), (17, True)}])
@pytest.mark.parametrize("compile_tokens", [0, 50, 1_000, 10**9])
def test_length_groups_minimise_compiles_plus_padded_tokens(compile_tokens, compiled,
                                                            monkeypatch):
  """Against every partition, enumerated: each group costs COMPILE_TOKENS (none where its shape,
  (longest, several lengths), is already compiled) plus its rows times its longest length."""
  monkeypatch.setattr(scoring, "COMPILE_TOKENS", compile_tokens)
  counts = {3: 40, 4: 2, 5: 30, 9: 1, 10: 25, 17: 3, 30: 8}
  lengths = sorted(counts)

  def cost(sizes):
    total, start = 0, 0
    for size in sizes:
      run = lengths[start:start + size]
      total += (0 if (run[-1], size > 1) in compiled else compile_tokens) + sum(
        counts[n] for n in run) * run[-1]
      start += size
    return total

  groups = scoring._groups(counts, compiled)
  assert [n for g in groups for n in g] == lengths
  assert cost([len(g) for g in groups]) == min(cost(p) for p in _partitions(len(lengths)))
  if compile_tokens == 0:
    assert all(len(g) == 1 for g in groups)  # nothing is padded
  if compile_tokens == 10**9 and not compiled:
    assert groups == [lengths]  # one shape
  if compile_tokens == 10**9 and (30, True) in compiled:
    assert groups[-1][-1] == 30 and (10, True) in {(g[-1], len(g) > 1) for g in groups}


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_a_later_call_reuses_the_shapes_an_earlier_one_compiled(objective, tok, monkeypatch):
  """Scored once with every length alone, a subset scored where any new shape costs more than
  all its padding compiles nothing new: it runs in the shapes already compiled, same scores."""
  lm = _loaded(objective, tok)
  sentences = SENTENCES + ["It rained.", "The long winter ended in a cold and muddy spring."]
  monkeypatch.setattr(scoring, "_SCORERS", {})
  monkeypatch.setattr(scoring, "COMPILE_TOKENS", 0)
  alone = scoring.sentence_scores(lm, sentences)
  (scorer,) = scoring._SCORERS.values()
  shapes = scorer.score._cache_size()
  monkeypatch.setattr(scoring, "COMPILE_TOKENS", 10**9)
  np.testing.assert_allclose(scoring.sentence_scores(lm, sentences[1::2]), alone[1::2],
                             rtol=1e-5)
  assert scorer.score._cache_size() == shapes


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_scores_do_not_depend_on_how_rows_are_grouped(objective, tok, monkeypatch):
  """Every length alone (no padding) and all lengths in one padded shape (the padding masked
  out as segment 0) give the same scores: no real token attends to padding."""
  lm = _loaded(objective, tok)
  sentences = SENTENCES + ["It rained.", "The long winter ended in a cold and muddy spring."]
  monkeypatch.setattr(scoring, "COMPILE_TOKENS", 0)
  alone = scoring.sentence_scores(lm, sentences)
  monkeypatch.setattr(scoring, "COMPILE_TOKENS", 10**9)
  padded = scoring.sentence_scores(lm, sentences)
  np.testing.assert_allclose(padded, alone, rtol=1e-5)


@pytest.mark.parametrize("objective", ["mlm", "clm"])
@pytest.mark.parametrize("mesh", ["data", "fsdp", "2,2,2"])
def test_scores_sharded_over_a_mesh_equal_one_devices(objective, mesh, tok):
  """Rows over data x fsdp (8 host devices), weights laid out as training lays them out."""
  lm = _loaded(objective, tok)
  want = scoring.sentence_scores(lm, SENTENCES)
  sharded = api.on_mesh(lm, api.scoring_mesh(mesh))
  leaves = jax.tree.leaves(nnx.state(sharded.model))
  assert {len(leaf.sharding.device_set) for leaf in leaves} == {8}
  np.testing.assert_allclose(scoring.sentence_scores(sharded, SENTENCES), want, rtol=1e-5)


def test_scoring_meshes_by_name():
  assert api.scoring_mesh("none") is None
  assert dict(api.scoring_mesh("data").shape) == {"data": 8, "fsdp": 1, "tensor": 1}
  assert dict(api.scoring_mesh("auto").shape) == {"data": 8, "fsdp": 1, "tensor": 1}
  assert dict(api.scoring_mesh("1,-1,2").shape) == {"data": 1, "fsdp": 4, "tensor": 2}
  for bad in ("dp", "2,2", "0,1,1"):
    with pytest.raises(ConfigError) as e:
      api.scoring_mesh(bad)
    assert "\n" not in str(e.value) and "mesh" in str(e.value)
  with pytest.raises(ConfigError, match="do not divide|devices"):
    api.scoring_mesh("3,-1,1")
