"""jaxlm.eval.blimp_data: the shipped BLiMP pairs, subsampling, scoring, published figures."""

import gzip
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from jaxlm.eval import blimp_data
from jaxlm.eval.blimp_data import MinimalPair

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "jaxlm" / "eval" / "data" / "blimp"


def test_paradigms_and_phenomena():
  assert len(blimp_data.PARADIGMS) == 67 and list(blimp_data.PARADIGMS) == sorted(
      blimp_data.PARADIGMS)
  assert len(blimp_data.PHENOMENA) == 12 and list(blimp_data.PHENOMENA) == sorted(
      blimp_data.PHENOMENA)
  assert "island_effects" in blimp_data.PHENOMENA
  assert blimp_data.PHENOMENON["animate_subject_passive"] == "argument_structure"


def test_all_pairs():
  pairs = blimp_data.load_pairs(per_paradigm=None)
  assert len(pairs) == 67_000 and blimp_data.load_pairs(per_paradigm=0) == pairs
  by_uid = Counter(p.uid for p in pairs)
  assert set(by_uid) == set(blimp_data.PARADIGMS) and set(by_uid.values()) == {1000}
  assert [p.pair_id for p in pairs[:1000]] == list(range(1000))
  assert {p.phenomenon for p in pairs} == set(blimp_data.PHENOMENA)
  assert all(blimp_data.PHENOMENON[p.uid] == p.phenomenon for p in pairs)
  first = pairs[0]
  assert first == MinimalPair("adjunct_island", "island_effects", 0,
                              "Who should Derek hug after shocking Richard?",
                              "Who should Derek hug Richard after shocking?")


def test_subsample_is_fixed():
  pairs = blimp_data.load_pairs()  # 100 per paradigm, seed 0
  assert len(pairs) == 6700 and set(Counter(p.uid for p in pairs).values()) == {100}
  assert blimp_data.load_pairs() == pairs
  # Pinned, so a change of the sampling scheme (which would move every result) is noticed.
  assert [p.pair_id for p in pairs[:8]] == [24, 29, 35, 39, 51, 59, 63, 66]
  assert [p.pair_id for p in blimp_data.load_pairs("wh_vs_that_with_gap", 10, seed=1)] == [
      116, 250, 293, 400, 407, 409, 598, 730, 772, 842]
  # Within a paradigm: sorted, distinct, nested in a larger sample, different for another seed.
  ids = [p.pair_id for p in pairs if p.uid == "adjunct_island"]
  assert ids == sorted(set(ids))
  assert set(pairs) <= set(blimp_data.load_pairs(per_paradigm=200))
  assert blimp_data.load_pairs(per_paradigm=100, seed=1) != pairs


def test_paradigm_selection():
  chosen = blimp_data.load_pairs(["passive_1", "adjunct_island", "passive_1"], per_paradigm=5)
  assert [p.uid for p in chosen] == ["adjunct_island"] * 5 + ["passive_1"] * 5
  assert blimp_data.load_pairs("passive_1", per_paradigm=5) == chosen[5:]


def test_unknown_paradigm_and_bad_size():
  with pytest.raises(ValueError) as error:
    blimp_data.load_pairs(["adjunct_island", "adjunct_islands"])
  message = str(error.value)
  assert "'adjunct_islands'" in message and "PARADIGMS" in message and "\n" not in message
  with pytest.raises(ValueError, match="per_paradigm"):
    blimp_data.load_pairs(per_paradigm=1001)


def test_ties_count_half():
  pairs = blimp_data.load_pairs(per_paradigm=10)
  n = len(pairs)
  tie = blimp_data.summarize(pairs, np.zeros(n), np.zeros(n))
  assert tie.overall == 50.0 and tie.n_pairs == n
  assert set(tie.per_paradigm.values()) == {50.0} and set(tie.per_phenomenon.values()) == {50.0}
  assert len(tie.per_paradigm) == 67 and len(tie.per_phenomenon) == 12
  np.testing.assert_array_equal(tie.correct, np.full(n, 0.5))
  assert blimp_data.summarize(pairs, np.ones(n), np.zeros(n)).overall == 100.0
  assert blimp_data.summarize(pairs, np.zeros(n), np.ones(n)).overall == 0.0


def test_summarize_groups():
  pairs = blimp_data.load_pairs(["adjunct_island", "passive_1", "passive_2"], per_paradigm=4)
  good = np.array([1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0], float)  # adjunct 4/4, p1 1/4, p2 3/4
  good[-1] = 0.5  # a tie: passive_2 gets 2.5/4
  summary = blimp_data.summarize(pairs, good, np.full(12, 0.5))
  assert dict(summary.per_paradigm) == {"adjunct_island": 100.0, "passive_1": 25.0,
                                        "passive_2": 62.5}
  assert dict(summary.per_phenomenon) == {"argument_structure": 43.75, "island_effects": 100.0}
  assert summary.overall == pytest.approx(100 * 7.5 / 12)
  with pytest.raises(ValueError):
    blimp_data.summarize(pairs, good[:-1], good[:-1])
  with pytest.raises(ValueError, match="NaN"):
    blimp_data.summarize(pairs, np.full(12, np.nan), good)


def test_published_reproduces_the_paper():
  table = blimp_data.published()
  assert set(table) == set(blimp_data.SYSTEMS)
  overall = {system: round(acc.overall, 1) for system, acc in table.items()}
  assert overall == {"ngram": 61.2, "lstm": 69.8, "txl": 69.6, "gpt2": 83.0, "human": 88.6}
  assert set(table["gpt2"].per_paradigm) == set(blimp_data.PARADIGMS)
  assert table["gpt2"].per_phenomenon["anaphor_agreement"] == pytest.approx(99.3)
  assert table["human"].per_paradigm["adjunct_island"] == pytest.approx(94.0)


def test_shipped_files_are_rebuilt_byte_for_byte(shared_data, tmp_path):
  subprocess.run([sys.executable, str(REPO / "tools" / "build_blimp.py"),
                  str(shared_data / "blimp"), "--out", str(tmp_path)], check=True,
                 capture_output=True)
  for name in ("pairs.jsonl.gz", "published.json"):
    assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), name
  assert (SHIPPED / "pairs.jsonl.gz").stat().st_size < 3_000_000
  with gzip.open(SHIPPED / "pairs.jsonl.gz", "rt") as f:
    assert sum(1 for _ in f) == 67_000
