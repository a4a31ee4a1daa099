"""compare's differences and the report's words, on a hand-made summary."""

from __future__ import annotations

import numpy as np
import pytest

from jaxlm import stats
from jaxlm.studies import compare


def _finetune(scores_by_seed, correct_first):
  seeds = [{"seed": s, "metrics": {"test": {"score": v}}, "correct": {"test": correct_first}}
           for s, v in scores_by_seed.items()]
  values = list(scores_by_seed.values())
  return {"seeds": seeds, "summary": {"test": {"score": {
    "mean": float(np.mean(values)), "min": min(values), "max": max(values)}}}}


def test_differences_are_paired_over_seeds_and_examples():
  rng = np.random.default_rng(0)
  a_correct = (rng.random(400) < 0.8).astype(int).tolist()
  b_correct = (rng.random(400) < 0.6).astype(int).tolist()
  summary = {
    "objectives": ["mlm"], "baseline": "none", "baselines": {"mlm": "none"},
    "finetune": {"mlm": {"t": _finetune({0: 80.0, 1: 82.0, 2: 81.0}, a_correct)},
                 "none": {"t": _finetune({0: 60.0, 1: 61.0, 2: 65.0}, b_correct)}},
    "zero_shot": {},
  }
  seeds, examples = compare.differences(summary)
  assert (seeds.a, seeds.b, seeds.split, seeds.over) == ("mlm", "none", "test", "seeds")
  # Paired by seed: the t-interval of the per-seed differences 20, 21, 16.
  want = stats.mean_ci([20.0, 21.0, 16.0])
  assert list(seeds.interval) == pytest.approx(list(want))
  assert seeds.interval.estimate == pytest.approx(19.0)
  assert examples.over == "examples"
  assert list(examples.interval) == pytest.approx(list(stats.paired_bootstrap_diff(
    np.asarray(a_correct) * 100.0, np.asarray(b_correct) * 100.0)))
  assert seeds.significant and examples.significant
  # Two comparisons in the family: Holm multiplies the smaller p by 2, then keeps the order.
  small, large = sorted([seeds.interval.p_value, examples.interval.p_value])
  adjusted = sorted([seeds.adjusted_p, examples.adjusted_p])
  assert adjusted == pytest.approx([min(1, 2 * small), max(min(1, 2 * small), large)])
  assert seeds.beyond_seed_range is True  # 80 > 65
  assert examples.beyond_seed_range is None
  row = seeds.to_json()
  assert row["interval"] == pytest.approx(list(want)) and row["beyond_seed_range"] is True


def test_overlapping_seeds_are_not_called_apart():
  same = [1, 0] * 50
  summary = {"objectives": ["mlm", "clm"], "baseline": None, "zero_shot": {},
             "finetune": {"mlm": {"t": _finetune({0: 70.0, 1: 74.0}, same)},
                          "clm": {"t": _finetune({0: 72.0, 1: 71.0}, same)}}}
  seeds, examples = compare.differences(summary)
  assert seeds.beyond_seed_range is False
  assert list(examples.interval) == [0.0, 0.0, 0.0]
  assert not seeds.significant and not examples.significant


def test_failed_seeds_are_left_out_of_the_difference():
  summary = {"objectives": ["mlm", "clm"], "baseline": None, "zero_shot": {},
             "finetune": {"mlm": {"t": _finetune({0: 70.0, 1: 74.0, 2: 50.0}, [1, 0] * 50)},
                          "clm": {"t": _finetune({0: 72.0, 1: 71.0, 2: 73.0}, [1, 0] * 50)}}}
  summary["finetune"]["mlm"]["t"]["failed_seeds"] = [2]  # predicted one class everywhere
  seeds, _ = compare.differences(summary)
  assert seeds.interval.estimate == pytest.approx(((70 - 72) + (74 - 71)) / 2)
  assert seeds.a_range == (70.0, 74.0)


def test_each_variant_is_compared_with_the_untrained_arm_of_its_attention():
  same = [1, 0] * 50
  summary = {"objectives": ["mlm", "clm"], "baseline": "none", "zero_shot": {},
             "baselines": {"mlm": "none", "clm": "none_causal"},
             "finetune": {name: {"t": _finetune({0: 70.0, 1: 71.0}, same)}
                          for name in ("mlm", "clm", "none", "none_causal")}}
  pairs = {(d.a, d.b) for d in compare.differences(summary)}
  assert pairs == {("mlm", "clm"), ("mlm", "none"), ("clm", "none_causal")}


def test_pre_training_seeds_give_an_interval_over_them():
  same = [1, 0] * 50
  ft = {"mlm": 80.0, "mlm-seed1": 78.0, "mlm-seed2": 81.0, "clm": 75.0, "clm-seed1": 76.0,
        "clm-seed2": 74.0, "none": 70.0}
  summary = {"objectives": ["mlm", "clm"], "pretrain_seeds": 3, "baseline": "none",
             "baselines": {"mlm": "none", "clm": "none"},
             "finetune": {arm: {"t": _finetune({0: v, 1: v}, same)} for arm, v in ft.items()},
             "zero_shot": {"blimp": {arm: {"overall": v, "correct": same}
                                     for arm, v in {"mlm": 50.0, "mlm-seed1": 52.0,
                                                    "mlm-seed2": 51.0, "clm": 53.0,
                                                    "clm-seed1": 55.0, "clm-seed2": 54.0}.items()}}}
  found = {(d.kind, d.a, d.b): d for d in compare.differences(summary)
           if d.over == "pretraining seeds"}
  assert set(found) == {("finetune", "mlm", "clm"), ("finetune", "mlm", "none"),
                        ("finetune", "clm", "none"), ("zero_shot", "mlm", "clm")}
  want = stats.mean_ci([80 - 75, 78 - 76, 81 - 74])
  assert list(found[("finetune", "mlm", "clm")].interval)[:3] == pytest.approx(list(want)[:3])
  assert found[("zero_shot", "mlm", "clm")].interval.estimate == pytest.approx(-3.0)
  # Only seed 0 of each variant enters the per-example zero-shot comparisons.
  assert {(d.a, d.b) for d in compare.differences(summary) if d.kind == "zero_shot"
          and d.over == "examples"} == {("mlm", "clm")}
