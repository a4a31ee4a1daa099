"""Uncertainty for the comparison report: t-intervals across seeds, bootstrap intervals across
examples, and the precision of an accuracy measured on n examples.

Two sources of noise are separate. Across pre-training/fine-tuning seeds (few values, one per
run): `mean_ci`, `seed_spread_diff`. Across the examples of one evaluation (many per-example
scores, e.g. BLiMP credit 0/0.5/1 per pair): `bootstrap_ci`, `paired_bootstrap_diff`. Two
systems scored on the same examples should be compared paired: the examples that are hard for
one are mostly hard for the other, and resampling them jointly cancels that shared variation.

Every function is scale-agnostic (fractions in, fractions out); `Interval.format(scale=100)`
prints points. Bootstraps use numpy's default_rng(seed), so a seed gives the same interval on
every run. Differences carry a two-sided p-value against zero; a report making many of them
corrects with `holm` (Holm 1979), which controls the chance of any false claim in the family.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

# Upper bound on the elements of one resampling index matrix [rows, n_examples]: 2**22 int64 is
# 32 MiB, plus as much for the gathered scores, whatever n_resamples and n_examples are.
_MAX_CHUNK_ELEMENTS = 1 << 22

# Resamples of every bootstrap over examples (intervals and p-values); `resamples_for` says when
# a p-value needs more.
BOOTSTRAP_RESAMPLES = 2000

# statistic(samples, axis=-1) -> samples reduced over their last axis, like np.mean, np.median.
Statistic = Callable[..., np.ndarray]


@dataclasses.dataclass(frozen=True)
class Interval:
  """An estimate and its confidence interval; low and high are NaN when there is none (n=1).

  Unpacks as a tuple: `estimate, low, high = paired_bootstrap_diff(a, b)`.
  """
  estimate: float
  low: float
  high: float
  p_value: float = math.nan  # two-sided, against zero (differences); NaN where not computed

  def __iter__(self) -> Iterator[float]:
    return iter((self.estimate, self.low, self.high))

  def excludes_zero(self) -> bool:
    """True when the whole interval is on one side of 0 (False if there is no interval)."""
    return bool(self.low > 0 or self.high < 0)  # NaN compares False

  def contains(self, value: float) -> bool:
    return bool(self.low <= value <= self.high)

  def format(self, scale: float = 1.0, digits: int = 1, signed: bool = True) -> str:
    """E.g. "+3.1 [+1.0, +5.2]" for Interval(0.031, 0.010, 0.052).format(scale=100).

    signed=False for a level rather than a difference ("83.0 [81.2, 84.7]"); "[n/a]" when
    there is no interval.
    """
    spec = f"{'+' if signed else ''}.{digits}f"
    text = format(self.estimate * scale, spec)
    if math.isnan(self.low) or math.isnan(self.high):
      return f"{text} [n/a]"
    return f"{text} [{format(self.low * scale, spec)}, {format(self.high * scale, spec)}]"


def _check_confidence(confidence: float) -> None:
  if not 0 < confidence < 1:
    raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _vector(values, name: str) -> np.ndarray:
  x = np.asarray(values, dtype=np.float64)
  if x.ndim != 1 or not x.size:
    raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {x.shape}")
  if np.isnan(x).any():
    raise ValueError(f"{name} contains NaN")
  return x


def _t_critical(confidence: float, df: float) -> float:
  return float(scipy_stats.t.ppf((1 + confidence) / 2, df))


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
  """Mean and Student-t interval, mean ± t(df=n-1) · s/√n with s the sample std (ddof=1).

  For values across seeds (one per run). With one value there is no spread to go by: the
  interval is (nan, nan).
  """
  _check_confidence(confidence)
  x = _vector(values, "values")  # [n]
  mean = float(x.mean())
  if x.size < 2:
    return Interval(mean, math.nan, math.nan)
  se = float(x.std(ddof=1)) / math.sqrt(x.size)
  half = _t_critical(confidence, x.size - 1) * se
  return Interval(mean, mean - half, mean + half, _t_p_value(mean, se, x.size - 1))


def _t_p_value(estimate: float, se: float, df: float) -> float:
  """Two-sided p of a t statistic estimate / se on df degrees of freedom (0 spread: 0 or 1)."""
  if se == 0:
    return 1.0 if estimate == 0 else 0.0
  return float(2 * scipy_stats.t.sf(abs(estimate) / se, df))


def _resampled(samples: np.ndarray, n_resamples: int, seed: int,
               statistic: Statistic) -> np.ndarray:
  """[m, n_resamples] statistic of each of m rows of samples [m, n] under the same resamples.

  Resample r draws n example indices with replacement, one row of an index matrix; every row of
  `samples` is gathered with the same indices (a paired bootstrap for m > 1).
  """
  if n_resamples < 1:
    raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
  m, n = samples.shape
  rng = np.random.default_rng(seed)
  out = np.empty((m, n_resamples), np.float64)
  rows = max(1, _MAX_CHUNK_ELEMENTS // (m * n))
  for start in range(0, n_resamples, rows):
    k = min(rows, n_resamples - start)
    idx = rng.integers(0, n, size=(k, n))  # [k, n] example indices
    out[:, start:start + k] = statistic(samples[:, idx], axis=-1)  # [m, k, n] -> [m, k]
  return out


def bootstrap_distribution(per_example: Sequence[float] | np.ndarray,
                           n_resamples: int = BOOTSTRAP_RESAMPLES,
                           seed: int = 0, statistic: Statistic = np.mean) -> np.ndarray:
  """[n_resamples] statistic of resamples (with replacement) of the examples' scores."""
  x = _vector(per_example, "per_example")
  return _resampled(x[None], n_resamples, seed, statistic)[0]


def _percentile_interval(estimate: float, distribution: np.ndarray,
                         confidence: float) -> Interval:
  low, high = np.quantile(distribution, [(1 - confidence) / 2, (1 + confidence) / 2])
  return Interval(float(estimate), float(low), float(high))


def bootstrap_ci(per_example: Sequence[float] | np.ndarray,
                 n_resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0, confidence: float = 0.95,
                 statistic: Statistic = np.mean) -> Interval:
  """statistic(per_example) and its percentile-bootstrap interval over the examples.

  The uncertainty of one system's score from the finite sample of examples (not across seeds).
  `statistic` must reduce an axis: statistic(x, axis=-1), like np.mean or np.median.
  """
  _check_confidence(confidence)
  x = _vector(per_example, "per_example")
  distribution = bootstrap_distribution(x, n_resamples, seed, statistic)
  return _percentile_interval(float(statistic(x, axis=-1)), distribution, confidence)


def paired_bootstrap_diff(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                          n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                          confidence: float = 0.95,
                          statistic: Statistic = np.mean) -> Interval:
  """statistic(a) - statistic(b) and its paired percentile-bootstrap interval.

  a[i] and b[i] are two systems' scores on the same example i; each resample draws example
  indices once and takes them from both, so variation shared by the systems cancels.
  """
  _check_confidence(confidence)
  x, y = _vector(a, "a"), _vector(b, "b")
  if x.shape != y.shape:
    raise ValueError(f"a and b must score the same examples, got {x.size} and {y.size} scores")
  both = _resampled(np.stack([x, y]), n_resamples, seed, statistic)  # [2, n_resamples]
  estimate = float(statistic(x, axis=-1)) - float(statistic(y, axis=-1))
  interval = _percentile_interval(estimate, both[0] - both[1], confidence)
  return dataclasses.replace(interval, p_value=_bootstrap_p_value(both[0] - both[1]))


def _bootstrap_p_value(differences: np.ndarray) -> float:
  """Two-sided bootstrap p against zero: twice the smaller tail of the resampled differences
  on either side of 0, counted with the +1 correction so it is never 0 (Davison & Hinkley 1997,
  eq. 4.11). Every resample 0 (identical systems): 1."""
  n = differences.size
  below, above = int((differences <= 0).sum()), int((differences >= 0).sum())
  return float(min(1.0, 2 * (min(below, above) + 1) / (n + 1)))


def paired_bootstrap_mean_diff(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                               n_resamples: int, seed: int = 0,
                               confidence: float = 0.95) -> Interval:
  """`paired_bootstrap_diff` of the means, drawn through counts: a resample's mean difference
  depends only on how many of each distinct per-example difference a − b it drew, and those
  counts are multinomial (n draws over the distinct values, each with its share of the n
  examples). The same bootstrap distribution as resampling indices (another random stream),
  at a cost that grows with the distinct values instead of n: examples scored 0, ½ or 1 have at
  most five, so a million resamples take a fraction of a second. For p-values that Holm needs
  below what `BOOTSTRAP_RESAMPLES` can show (`resamples_for`)."""
  _check_confidence(confidence)
  x, y = _vector(a, "a"), _vector(b, "b")
  if x.shape != y.shape:
    raise ValueError(f"a and b must score the same examples, got {x.size} and {y.size} scores")
  if n_resamples < 1:
    raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
  values, counts = np.unique(x - y, return_counts=True)
  n = x.size
  rng = np.random.default_rng(seed)
  means = np.empty(n_resamples, np.float64)
  rows = max(1, _MAX_CHUNK_ELEMENTS // values.size)
  for start in range(0, n_resamples, rows):
    k = min(rows, n_resamples - start)
    means[start:start + k] = rng.multinomial(n, counts / n, size=k) @ values / n
  estimate = float(x.mean() - y.mean())
  interval = _percentile_interval(estimate, means, confidence)
  return dataclasses.replace(interval, p_value=_bootstrap_p_value(means))


def resamples_for(p_value: float, family: int, n_resamples: int = BOOTSTRAP_RESAMPLES,
                  alpha: float = 0.05) -> int:
  """Resamples a bootstrap p-value (from `n_resamples`) needs when Holm corrects it over
  `family` tests at level `alpha`: `n_resamples` where they already decide, else 200 ·
  family / alpha, which puts about 100 resamples beyond zero at Holm's smallest threshold
  alpha / family (a Monte Carlo error of about 10% there).

  They decide when family · p <= alpha (significant whatever the other tests), or when more
  than ten resamples fell beyond zero (p >= 22 / (n_resamples + 1), 0.011 at 2,000: known to
  about a third, and more than ten times the floor 2 / (n_resamples + 1)). Left: a p of a few
  resamples, too coarse to place against Holm's thresholds, among them every p at the floor
  in a family of more than alpha · (n_resamples + 1) / 2 tests (25 at 2,000 resamples), where
  the floor alone would rule out significance."""
  if math.isnan(p_value) or family * p_value <= alpha or p_value >= 22 / (n_resamples + 1):
    return n_resamples
  return max(n_resamples, math.ceil(200 * family / alpha))


def seed_spread_diff(a_by_seed: Mapping[object, float] | Sequence[float],
                     b_by_seed: Mapping[object, float] | Sequence[float],
                     confidence: float = 0.95) -> Interval:
  """mean(a) - mean(b) over seeds, with a t-interval.

  Paired when both are mappings with the same seeds (e.g. {seed: score}): the interval is
  `mean_ci` of the per-seed differences, as runs with one seed share data order and
  initialisation. Otherwise (different seeds, or plain sequences, which carry no seed) the
  runs are independent and a Welch interval is used. (nan, nan) when there are too few seeds
  (fewer than 2 pairs, or fewer than 2 runs on a side).
  """
  _check_confidence(confidence)
  if isinstance(a_by_seed, Mapping) and isinstance(b_by_seed, Mapping) and \
      a_by_seed.keys() == b_by_seed.keys():
    return mean_ci([a_by_seed[s] - b_by_seed[s] for s in a_by_seed], confidence)  # paired t
  x = _vector(list(a_by_seed.values()) if isinstance(a_by_seed, Mapping) else a_by_seed, "a")
  y = _vector(list(b_by_seed.values()) if isinstance(b_by_seed, Mapping) else b_by_seed, "b")
  estimate = float(x.mean() - y.mean())
  if x.size < 2 or y.size < 2:
    return Interval(estimate, math.nan, math.nan)
  va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size  # squared standard errors
  se = math.sqrt(va + vb)
  if se == 0:  # every run scored the same: no spread to widen the interval
    return Interval(estimate, estimate, estimate, _t_p_value(estimate, 0.0, 1))
  df = (va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))  # Welch-Satterthwaite
  half = _t_critical(confidence, df) * se
  return Interval(estimate, estimate - half, estimate + half, _t_p_value(estimate, se, df))


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
  """Holm-adjusted p-values, in the order given: the k-th smallest p is multiplied by (m − k + 1)
  and the running maximum taken, capped at 1. Rejecting where the adjusted p ≤ α controls the
  family-wise error rate at α for any dependence between the tests. NaN (no test) stays NaN and
  does not count towards m."""
  p = np.asarray(p_values, dtype=np.float64)
  out = np.full(p.shape, np.nan)
  tested = np.flatnonzero(~np.isnan(p))
  order = tested[np.argsort(p[tested], kind="stable")]
  m = order.size
  running = 0.0
  for k, i in enumerate(order):
    running = max(running, min(1.0, (m - k) * p[i]))
    out[i] = running
  return out


def binomial_halfwidth(p: float | np.ndarray, n: int | np.ndarray,
                       confidence: float = 0.95) -> float | np.ndarray:
  """Half-width z·√(p(1-p)/n) of the normal-approximation interval of an accuracy p on n
  examples: the precision to state ("±1.2 points" for p=0.5, n=6,700, times 100).

  Half credit for ties makes the per-example variance at most p(1-p), so this is conservative.
  """
  _check_confidence(confidence)
  p, n = np.asarray(p, np.float64), np.asarray(n, np.float64)
  if np.any((p < 0) | (p > 1)) or np.any(n <= 0):
    raise ValueError(f"binomial_halfwidth needs 0 <= p <= 1 and n > 0, got p={p}, n={n}")
  half = float(scipy_stats.norm.ppf((1 + confidence) / 2)) * np.sqrt(p * (1 - p) / n)
  return float(half) if half.ndim == 0 else half
