"""jaxlm.stats against hand computations, direct loops and scipy."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from jaxlm import stats

T_975_DF4 = 2.7764451051977987  # Student t 97.5% quantile, 4 degrees of freedom (tables: 2.776)


def test_mean_ci_is_the_t_interval():
  iv = stats.mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
  half = T_975_DF4 * math.sqrt(2.5) / math.sqrt(5)  # t · s/√n, s² = 10/4
  assert iv.estimate == 3.0
  assert iv.low == pytest.approx(3 - half, abs=1e-12)
  assert iv.high == pytest.approx(3 + half, abs=1e-12)
  low, high = scipy_stats.t.interval(0.95, df=4, loc=3.0, scale=scipy_stats.sem([1, 2, 3, 4, 5]))
  assert (iv.low, iv.high) == pytest.approx((low, high), abs=1e-12)


def test_mean_ci_one_value_has_no_interval():
  iv = stats.mean_ci([0.8])
  assert iv.estimate == 0.8 and math.isnan(iv.low) and math.isnan(iv.high)
  assert not iv.excludes_zero()
  assert iv.format(scale=100) == "+80.0 [n/a]"


def test_bootstrap_matches_a_direct_loop_with_the_same_rng(monkeypatch):
  x = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 1.0, 1.0])
  # A tiny chunk bound, so the index matrix is drawn in several chunks (and a ragged last one).
  monkeypatch.setattr(stats, "_MAX_CHUNK_ELEMENTS", 3 * x.size)
  rng = np.random.default_rng(7)
  loop = np.array([x[rng.integers(0, x.size, size=x.size)].mean() for _ in range(100)])
  np.testing.assert_array_equal(stats.bootstrap_distribution(x, 100, seed=7), loop)
  iv = stats.bootstrap_ci(x, n_resamples=100, seed=7, confidence=0.9)
  assert iv.estimate == pytest.approx(x.mean())
  assert (iv.low, iv.high) == tuple(np.quantile(loop, [0.05, 0.95]))


def test_bootstrap_matches_the_exact_resampling_distribution():
  # All 4**4 equally likely resamples of 4 values, enumerated.
  x = np.array([0.0, 1.0, 2.0, 7.0])
  exact = np.array([x[list(i)].mean() for i in itertools.product(range(4), repeat=4)])
  values, counts = np.unique(exact, return_counts=True)
  cdf = np.cumsum(counts) / exact.size
  drawn = stats.bootstrap_distribution(x, n_resamples=20_000, seed=0)
  freq = np.array([(drawn == v).mean() for v in values])
  assert np.abs(freq - counts / exact.size).max() < 0.01
  # The exact 2.5% and 97.5% quantiles are 0.5 and 5.5, far from the CDF's steps.
  assert values[np.searchsorted(cdf, 0.025)] == 0.5 and values[np.searchsorted(cdf, 0.975)] == 5.5
  iv = stats.bootstrap_ci(x, n_resamples=20_000, seed=0)
  assert (iv.estimate, iv.low, iv.high) == (2.5, 0.5, 5.5)


def test_bootstrap_other_statistic():
  x = np.arange(11.0)
  iv = stats.bootstrap_ci(x, n_resamples=500, statistic=np.median)
  assert iv.estimate == 5.0 and iv.low < 5.0 < iv.high


def _correlated_systems(n=1000, seed=0):
  # One shared difficulty u per example; a is right when u < 0.7, b when u < 0.6: the true
  # difference of accuracies is 0.1, and every example b gets right, a gets right too.
  u = np.random.default_rng(seed).random(n)
  return (u < 0.7).astype(float), (u < 0.6).astype(float)


def test_paired_diff_contains_the_true_difference_and_is_narrower_than_unpaired():
  a, b = _correlated_systems()
  paired = stats.paired_bootstrap_diff(a, b, n_resamples=2000, seed=0)
  assert paired.estimate == pytest.approx(a.mean() - b.mean())
  assert paired.contains(0.1) and paired.excludes_zero()
  estimate, low, high = paired  # unpacks as a tuple
  assert (estimate, low, high) == (paired.estimate, paired.low, paired.high)
  # Unpaired: each system resampled on its own.
  diffs = (stats.bootstrap_distribution(a, 2000, seed=1) -
           stats.bootstrap_distribution(b, 2000, seed=2))
  unpaired_low, unpaired_high = np.quantile(diffs, [0.025, 0.975])
  assert paired.high - paired.low < 0.6 * (unpaired_high - unpaired_low)


def test_paired_diff_rejects_different_examples():
  with pytest.raises(ValueError, match="same examples"):
    stats.paired_bootstrap_diff([1.0, 0.0], [1.0, 0.0, 1.0])


def test_seed_spread_diff_paired_is_the_t_interval_of_per_seed_differences():
  a = {0: 0.81, 1: 0.83, 2: 0.80}
  b = {2: 0.78, 0: 0.80, 1: 0.79}  # same seeds, another order
  iv = stats.seed_spread_diff(a, b)
  ref = stats.mean_ci([0.01, 0.04, 0.02])
  assert (iv.estimate, iv.low, iv.high) == pytest.approx((ref.estimate, ref.low, ref.high))


def test_seed_spread_diff_unpaired_is_welch():
  a, b = [0.81, 0.83, 0.80, 0.84], [0.78, 0.80, 0.75]
  iv = stats.seed_spread_diff(a, b)
  ref = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
  assert iv.estimate == pytest.approx(np.mean(a) - np.mean(b))
  assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high))
  # Different seed lists are not paired either.
  assert stats.seed_spread_diff({0: 0.81, 1: 0.83}, {2: 0.78, 3: 0.80}).low == pytest.approx(
      stats.seed_spread_diff([0.81, 0.83], [0.78, 0.80]).low)
  assert math.isnan(stats.seed_spread_diff([0.8], [0.7, 0.75]).low)


def test_interval_format_and_excludes_zero():
  iv = stats.Interval(0.031, 0.010, 0.052)
  assert iv.format(scale=100) == "+3.1 [+1.0, +5.2]"
  assert stats.Interval(0.83, 0.812, 0.847).format(scale=100, signed=False) == "83.0 [81.2, 84.7]"
  assert iv.excludes_zero() and stats.Interval(-0.2, -0.3, -0.1).excludes_zero()
  assert not stats.Interval(0.01, -0.01, 0.03).excludes_zero()


def test_binomial_halfwidth():
  assert 100 * stats.binomial_halfwidth(0.5, 6700) == pytest.approx(1.197, abs=1e-3)
  assert stats.binomial_halfwidth(0.5, 100) == pytest.approx(1.959964 * 0.05, rel=1e-6)
  np.testing.assert_allclose(stats.binomial_halfwidth(np.array([0.0, 1.0]), 10), [0.0, 0.0])
  with pytest.raises(ValueError):
    stats.binomial_halfwidth(1.5, 10)


def test_holm_matches_a_textbook_example():
  # Holm (1979) as in Wikipedia's "Holm–Bonferroni method" example: four tests at alpha 0.05;
  # sorted 0.005, 0.01, 0.03, 0.04 against 0.05/4, 0.05/3, 0.05/2: the first two are rejected,
  # and stepping down stops at 0.03 > 0.025, so 0.04 (< 0.05) is not rejected either.
  p = [0.01, 0.04, 0.03, 0.005]
  adjusted = stats.holm(p)
  np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
  assert list(adjusted <= 0.05) == [True, False, False, True]
  # Untested entries are left out of the family; a lone test is its own p.
  np.testing.assert_allclose(stats.holm([0.2, float("nan"), 0.01]), [0.2, np.nan, 0.02])
  assert stats.holm([0.7]) == pytest.approx([0.7])
  assert stats.holm([0.5, 0.9, 0.8]).max() <= 1.0


def test_p_values_agree_with_scipy_and_the_bootstrap():
  from scipy import stats as scipy_stats
  diffs = [1.2, 0.4, 2.1, 0.9]
  want = scipy_stats.ttest_1samp(diffs, 0.0).pvalue
  assert stats.mean_ci(diffs).p_value == pytest.approx(want)
  a, b = {0: 3.0, 1: 4.0, 2: 6.0}, {0: 1.0, 1: 3.5, 2: 2.0}
  paired = scipy_stats.ttest_rel(list(a.values()), list(b.values())).pvalue
  assert stats.seed_spread_diff(a, b).p_value == pytest.approx(paired)
  welch = scipy_stats.ttest_ind([3.0, 4.0, 6.0], [1.0, 3.5], equal_var=False).pvalue
  assert stats.seed_spread_diff([3.0, 4.0, 6.0], [1.0, 3.5]).p_value == pytest.approx(welch)
  rng = np.random.default_rng(0)
  x = rng.random(300) < 0.7
  y = rng.random(300) < 0.5
  far = stats.paired_bootstrap_diff(x * 1.0, y * 1.0)
  assert far.p_value == pytest.approx(2 / 2001)  # no resample crosses 0: the +1 floor
  same = stats.paired_bootstrap_diff(x * 1.0, x * 1.0)
  assert same.p_value == 1.0
  near = stats.paired_bootstrap_diff(x[:40] * 1.0, (rng.random(40) < 0.65) * 1.0)
  assert 0.05 < near.p_value <= 1.0 and not near.excludes_zero()


def test_the_counts_bootstrap_draws_the_exact_bootstrap_distribution():
  # Four paired items: every one of the 4**4 index draws enumerated gives the bootstrap
  # distribution of the mean difference exactly; the counts sampler and the index sampler
  # both converge to it.
  import itertools
  a, b = np.array([1.0, 1.0, 0.5, 0.0]), np.array([0.0, 1.0, 1.0, 0.0])
  d = a - b
  means = np.array([d[list(i)].mean() for i in itertools.product(range(4), repeat=4)])
  exact_below, exact_above = (means <= 0).mean(), (means >= 0).mean()
  counts = stats.paired_bootstrap_mean_diff(a, b, 400_000)
  want_p = min(1.0, 2 * min(exact_below, exact_above))
  assert counts.p_value == pytest.approx(want_p, abs=0.005)
  assert counts.estimate == pytest.approx(d.mean())
  indices = stats.paired_bootstrap_diff(a, b, n_resamples=100_000)
  assert counts.p_value == pytest.approx(indices.p_value, abs=0.01)
  assert list(counts)[1:] == list(indices)[1:]  # the percentiles of a discrete distribution
  # Identical systems: every resample 0.
  assert stats.paired_bootstrap_mean_diff(a, a, 1000).p_value == 1.0
  with pytest.raises(ValueError, match="same examples"):
    stats.paired_bootstrap_mean_diff(a, b[:3], 10)


def test_resamples_grow_only_where_the_family_needs_a_smaller_p():
  floor = 2 / 2001
  assert stats.resamples_for(floor, 21) == 2000  # 21 x 0.001 <= 0.05: significant already
  assert stats.resamples_for(floor, 110) == 440_000  # 110 x 0.001 > 0.05: the floor decides
  assert stats.resamples_for(12 / 2001, 110) == 440_000  # 5 beyond zero: still too coarse
  assert stats.resamples_for(6 / 2001, 21) == 84_000  # 2 beyond zero, 21 p = 0.063: undecided
  assert stats.resamples_for(22 / 2001, 110) == 2000  # 10 beyond zero: p >= 0.011, not near
  assert stats.resamples_for(0.4, 1000) == 2000
  assert stats.resamples_for(float("nan"), 110) == 2000
