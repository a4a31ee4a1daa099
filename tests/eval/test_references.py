"""Same-data bag-of-words references and the frozen-feature probe: hand-countable toys (one word
decides the label: 100; random labels: chance), cross-validation that sees only training rows,
and probe features against a direct computation through a tiny random model."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from flax import nnx
from helpers.model import model, tiny_config
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from jaxlm import api
from jaxlm.data import tokenizer as tokenization
from jaxlm.data.sources.text import CORPUS_DIR
from jaxlm.eval import probe, references, tasks
from jaxlm.eval.inputs import encode
from jaxlm.eval.tasks.base import Examples
from jaxlm.model.masks import MaskSpec

TASK = tasks.get("goemotions_sentiment")  # binary, accuracy
FILLER = ("the people", "of this", "government", "and", "we", "shall", "have", "to", "be")


@pytest.fixture(scope="module")
def tok():
  text = gzip.decompress((CORPUS_DIR / "inaugural" / "1861-Lincoln.txt.gz").read_bytes())
  return tokenization.train_tokenizer("bpe", [text.decode("utf-8")], 320)


def _examples(labels, rng, words=("peace", "war"), pair=False) -> Examples:
  """Filler sentences with `words[0]` for label 1 and `words[1]` for label 0 in them."""
  texts = []
  for y in labels:
    filler = list(rng.choice(FILLER, 4))
    filler.insert(int(rng.integers(5)), words[0] if y else words[1])
    texts.append(" ".join(filler))
  labels = np.asarray(labels, np.int64)
  return Examples(texts, list(texts) if pair else None, labels, np.arange(len(labels)))


def _split(n, seed, **kw):
  rng = np.random.default_rng(seed)
  return _examples(rng.integers(0, 2, n), rng, **kw)


def test_word_counts_are_lowercased_word_counts_learnt_on_train_only():
  train = Examples(["Good good film", "bad film"], None, np.array([1, 0]), np.arange(2))
  dev = Examples(["GOOD unseen bad bad"], None, np.array([1]), np.arange(1))
  x_train, x_evals = references._word_features(train, {"dev": dev})
  # vocabulary (train only, sorted): bad, film, good
  np.testing.assert_array_equal(x_train.toarray(), [[0, 1, 2], [1, 1, 0]])
  np.testing.assert_array_equal(x_evals["dev"].toarray(), [[2, 0, 1]])


def test_piece_counts_count_each_id_without_special_tokens(tok):
  texts = ["the people of the people", ""]
  got = references.piece_counts(tok, texts).toarray()
  assert got.shape == (2, tok.get_vocab_size())
  ids = tok.encode(texts[0], add_special_tokens=False).ids
  want = np.bincount(ids, minlength=tok.get_vocab_size())
  np.testing.assert_array_equal(got[0], want)
  assert got[1].sum() == 0


def test_one_decisive_word_scores_100_in_words_and_pieces(tok):
  # precondition for pieces: each decisive word has a piece no filler word has
  filler_ids = set(references.piece_counts(tok, list(FILLER)).nonzero()[1])
  for word in ("peace", "war"):
    assert set(tok.encode(" " + word, add_special_tokens=False).ids) - filler_ids
  train, dev = _split(120, 0), _split(80, 1)
  result = references.bag_of_words(TASK, train, {"dev": dev}, tokenizer=tok)
  assert set(result) == {"words", "pieces"}
  for mode in ("words", "pieces"):
    got = result[mode]["dev"]
    assert got["score"] == 100.0 and got["correct"] == [1] * len(dev)
    assert got["metrics"] == {"accuracy": 100.0} and got["train_examples"] == 120
    assert got["C"] in references.C_GRID


def test_random_labels_score_near_chance():
  rng = np.random.default_rng(2)
  train = _examples(rng.integers(0, 2, 200), rng)
  dev = _examples(rng.integers(0, 2, 400), rng)
  train.labels = rng.integers(0, 2, 200)  # the decisive words no longer decide
  dev.labels = rng.integers(0, 2, 400)
  got = references.bag_of_words(TASK, train, {"dev": dev})["words"]["dev"]
  assert 40 <= got["score"] <= 60  # chance 50; 4 standard errors at n=400 is 10
  assert got["score"] == pytest.approx(100 * np.mean(got["correct"]))


def test_pairs_are_side_by_side_so_which_text_holds_a_word_counts():
  rng = np.random.default_rng(3)

  def pairs(n):
    labels = rng.integers(0, 2, n)
    a, b = [], []
    for y in labels:  # "peace" in text b for label 1, in text a for label 0
      fill = [" ".join(rng.choice(FILLER, 3)) for _ in range(2)]
      a.append(fill[0] + ("" if y else " peace"))
      b.append(fill[1] + (" peace" if y else ""))
    return Examples(a, b, labels, np.arange(n))

  got = references.bag_of_words("rte", pairs(100), {"dev": pairs(60)})["words"]["dev"]
  assert got["score"] == 100.0  # one joined bag would see "peace" once either way: chance


def test_regression_uses_ridge_on_the_task_metric():
  rng = np.random.default_rng(4)

  def split(n):
    k = rng.integers(0, 4, n)
    texts = [" ".join(["peace"] * int(c) + list(rng.choice(FILLER, 3))) for c in k]
    return Examples(texts, list(texts), k.astype(np.float32), np.arange(n))

  got = references.bag_of_words("stsb", split(80), {"dev": split(40)})["words"]["dev"]
  assert got["score"] > 95 and set(got["metrics"]) == {"pearson", "spearman"}
  assert "correct" not in got and got["alpha"] in references.ALPHA_GRID


def test_cross_validation_fits_only_training_rows(monkeypatch):
  fitted, solvers = [], set()
  original = LogisticRegression.fit

  def spy(self, X, y, *args, **kwargs):
    fitted.append(X)
    solvers.add((self.solver, sparse.issparse(X)))
    return original(self, X, y, *args, **kwargs)

  monkeypatch.setattr(LogisticRegression, "fit", spy)
  rng = np.random.default_rng(5)
  x_train = np.c_[rng.normal(size=(50, 3)), np.zeros(50)]  # last column: 0 marks training rows
  y_train = (x_train[:, 0] > 0).astype(np.int64)
  x_dev = np.c_[rng.normal(size=(30, 3)), np.ones(30)]
  references.fit_and_score(x_train, y_train, {"dev": x_dev}, {"dev": (x_dev[:, 0] > 0)
                                                                .astype(np.int64)}, TASK)
  assert len(fitted) == references.FOLDS * len(references.C_GRID) + 1  # folds x grid + refit
  assert all(not x[:, -1].any() for x in fitted)  # never an eval row
  assert sorted({x.shape[0] for x in fitted}) == [40, 50]  # 4/5 of train in folds; all of it last
  assert solvers == {("newton-cholesky", False)}  # dense features: Newton steps

  # bag_of_words: the vocabulary comes from the training texts, so eval-only words add nothing
  fitted.clear()
  solvers.clear()
  train, dev = _split(50, 6), _split(20, 7)
  dev.texts_a = [t + " unseenword" for t in dev.texts_a]
  references.bag_of_words(TASK, train, {"dev": dev})
  width = references._word_features(train, {})[0].shape[1]
  assert all(x.shape[1] == width and x.shape[0] <= 50 for x in fitted)
  assert solvers == {("lbfgs", True)}  # sparse counts: L-BFGS


def test_worker_processes_fit_what_one_process_fits(monkeypatch):
  """From PARALLEL_ROWS training rows the fits run in one worker process per core; the chosen C,
  the scores and every prediction are those of the fits in one process."""
  rng = np.random.default_rng(11)
  w = rng.normal(size=16)
  x_train, x_dev = rng.normal(size=(300, 16)), rng.normal(size=(200, 16))
  noise = rng.normal(size=300) * 2
  y_train, y_dev = (x_train @ w + noise > 0).astype(int), (x_dev @ w > 0).astype(int)
  one = probe.linear_probe(x_train, y_train, {"dev": x_dev}, {"dev": y_dev}, TASK, seed=0)
  assert references._jobs(len(x_train), 55) == 1
  monkeypatch.setattr(references, "PARALLEL_ROWS", 100)
  assert references._jobs(len(x_train), 55) == min(len(os.sched_getaffinity(0)), 55)
  assert references._jobs(len(x_train), 1) == 1
  many = probe.linear_probe(x_train, y_train, {"dev": x_dev}, {"dev": y_dev}, TASK, seed=0)
  assert many == one


def test_unlabelled_eval_splits_are_refused():
  train, test = _split(20, 8), _split(10, 9)
  test.labels[:] = -1
  with pytest.raises(ValueError, match="unlabelled"):
    references.bag_of_words(TASK, train, {"test": test})


def test_probe_separates_a_linear_toy_and_not_random_labels():
  rng = np.random.default_rng(10)
  w = rng.normal(size=16)
  x_train, x_dev = rng.normal(size=(400, 16)) * 5 + 3, rng.normal(size=(400, 16)) * 5 + 3
  y_train, y_dev = ((x_train - 3) @ w > 0).astype(int), ((x_dev - 3) @ w > 0).astype(int)
  got = probe.linear_probe(x_train, y_train, {"dev": x_dev}, {"dev": y_dev}, TASK, seed=0)
  assert got["dev"]["score"] >= 95 and len(got["dev"]["correct"]) == 400
  random_labels = rng.integers(0, 2, 400)
  got = probe.linear_probe(x_train, rng.integers(0, 2, 400), {"dev": x_dev},
                           {"dev": random_labels}, TASK, seed=0)
  assert 40 <= got["dev"]["score"] <= 60


@pytest.mark.parametrize("objective,readout", [("clm", None), ("mlm", None), ("clm", "mean")])
def test_features_read_the_objectives_position_like_a_direct_computation(objective, readout,
                                                                          tok):
  config = tiny_config(objective, vocab_size=384, max_seq_len=32)
  lm = api.Pretrained(model=model(config), tokenizer=tok, config=config)
  ex = Examples(["the people", "we shall have to be a government of the people", "war"], None,
                np.array([0, 1, 0]), np.arange(3))
  got = probe.features(lm, ex, max_len=64, batch=2, readout=readout)  # 3 rows: a padded batch
  assert got.shape == (3, config.model.embed_dim) and got.dtype == np.float32
  attention, used = probe.readout_of(lm, readout)
  assert used == (readout or {"clm": "last", "mlm": "first"}[objective])
  rows = encode(tok, ex, 32)
  for i in range(3):
    n = int((rows["segment_ids"][i] > 0).sum())
    h = np.asarray(lm.model.backbone(rows["tokens"][i:i + 1, :n], MaskSpec(attention)))[0]
    want = {"first": h[0], "last": h[n - 1], "mean": h.mean(0)}[used]
    np.testing.assert_allclose(got[i], want, atol=1e-4, rtol=1e-4)


def test_probe_pretrained_vs_random_runs_side_by_side(tok):
  config = tiny_config("clm", vocab_size=384, max_seq_len=16)
  lm = api.Pretrained(model=model(config, seed=3), tokenizer=tok, config=config)
  train, dev = _split(40, 11), _split(20, 12)
  got = probe.probe_pretrained_vs_random(lm, TASK, train, {"dev": dev}, seed=0, batch=32)
  assert got["readout"] == "last" and got["attention"] == "causal" and got["max_len"] == 16
  for name in ("pretrained", "random"):
    assert 0 <= got[name]["dev"]["score"] <= 100 and len(got[name]["dev"]["correct"]) == 20
  assert got["difference"]["dev"] == pytest.approx(got["pretrained"]["dev"]["score"]
                                                   - got["random"]["dev"]["score"])


def test_the_random_model_shares_the_pretrained_models_compiled_forward(tok):
  # As the studies open a run (`api.from_params`): the random-init control is placed the same
  # way, so one width compiles one forward pass for both models, not one each.
  config = tiny_config("mlm", vocab_size=384, max_seq_len=16)
  lm = api.from_params(config, nnx.state(model(config, seed=5)), tok)
  probe._forward.cache_clear()
  probe.probe_pretrained_vs_random(lm, TASK, _split(20, 13), {"dev": _split(10, 14)}, seed=0,
                                   batch=32)
  graphdef, _ = nnx.split(lm.model.backbone)
  assert probe._forward(graphdef, "bidirectional", "first")._cache_size() == 1  # width 16
