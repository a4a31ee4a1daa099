"""Power laws of the scaling literature, fitted with their uncertainty: L(x) = E + A * x^(-alpha),
x being compute C (FLOPs), parameters N or tokens D (Kaplan et al. 2020; Hoffmann et al. 2022).

The fit minimises squared residuals of log L (Hoffmann et al. fit log-loss too: a loss of 3 and
one of 6 weigh alike) with scipy's least_squares from a grid of starting points, in x / x_min so
the three parameters are of comparable scale. Intervals are Wald intervals from the Jacobian at
the optimum, with Student t quantiles for the n - 3 residual degrees of freedom: with a handful
of points they are wide, and they say so. A leaf module: it imports nothing from jaxlm.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats


@dataclasses.dataclass(frozen=True)
class PowerLaw:
  """L(x) = E + A * x^(-alpha), each parameter with its 95% interval ([nan, nan]: none)."""

  E: float
  A: float
  alpha: float
  E_interval: tuple[float, float]
  A_interval: tuple[float, float]
  alpha_interval: tuple[float, float]
  points: int
  rms_log_residual: float

  def __call__(self, x):
    return self.E + self.A * np.power(np.asarray(x, np.float64), -self.alpha)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  def describe(self, x_name: str = "C") -> str:
    def ci(lo, hi, spec):
      return "n/a" if math.isnan(lo) else f"{lo:{spec}}–{hi:{spec}}"
    return (f"L = {self.E:.3f} + {self.A:.3g}·{x_name}^(−{self.alpha:.3f}); α 95% "
            f"[{ci(*self.alpha_interval, '.3f')}], E [{ci(*self.E_interval, '.3f')}], "
            f"{self.points} points, RMS log-residual {self.rms_log_residual:.4f}")


def _model(theta: np.ndarray, u: np.ndarray) -> np.ndarray:
  E, log_A, alpha = theta
  return E + np.exp(log_A) * np.power(u, -alpha)


def fit(x, loss, confidence: float = 0.95) -> PowerLaw:
  """Fits L = E + A x^-alpha to (x, loss) points (at least 3, x > 0, loss > 0)."""
  x, loss = np.asarray(x, np.float64), np.asarray(loss, np.float64)
  if x.shape != loss.shape or x.ndim != 1 or len(x) < 3:
    raise ValueError(f"a power law needs at least 3 (x, loss) points, got {len(x)}")
  if np.any(x <= 0) or np.any(loss <= 0):
    raise ValueError("power-law points need x > 0 and loss > 0")
  x0 = float(x.min())
  u = x / x0

  def residuals(theta):
    return np.log(np.maximum(_model(theta, u), 1e-12)) - np.log(loss)

  best = None
  lo_bounds, hi_bounds = [0.0, -30.0, 1e-4], [float(loss.min()), 30.0, 5.0]
  for e_frac in (0.0, 0.5, 0.9):
    for alpha0 in (0.05, 0.3, 1.0):
      E0 = e_frac * float(loss.min())
      A0 = max(float(loss.max()) - E0, 1e-6)
      start = np.clip([E0, math.log(A0), alpha0], np.add(lo_bounds, 1e-9),
                      np.subtract(hi_bounds, 1e-9))
      result = optimize.least_squares(residuals, start, bounds=(lo_bounds, hi_bounds),
                                      method="trf", x_scale="jac")
      if best is None or result.cost < best.cost:
        best = result
  E, log_A, alpha = best.x
  n, dof = len(x), len(x) - 3
  rss = float(np.sum(best.fun ** 2))
  intervals = [(math.nan, math.nan)] * 3
  if dof > 0:
    J = best.jac
    cov = np.linalg.pinv(J.T @ J) * rss / dof
    t = scipy_stats.t.ppf(0.5 + confidence / 2, dof)
    half = t * np.sqrt(np.maximum(np.diag(cov), 0.0))
    intervals = [(float(v - h), float(v + h)) for v, h in zip(best.x, half)]
  # Back from x / x0 to x: A x0^alpha (x/x0)^-alpha = A' x^-alpha with A' = A x0^alpha.
  A = math.exp(log_A) * x0 ** alpha
  la_lo, la_hi = intervals[1]
  a_lo, a_hi = intervals[2]
  A_interval = ((math.nan, math.nan) if math.isnan(la_lo) else
                (math.exp(la_lo) * x0 ** alpha, math.exp(la_hi) * x0 ** alpha))
  return PowerLaw(E=float(E), A=float(A), alpha=float(alpha), E_interval=intervals[0],
                  A_interval=A_interval, alpha_interval=(a_lo, a_hi), points=n,
                  rms_log_residual=math.sqrt(rss / n))


def lower_envelope(x, loss) -> np.ndarray:
  """Indices of the points on the compute-efficient frontier: lower loss than every point at or
  below its x (Kaplan et al.'s envelope of learning curves), in increasing x."""
  x, loss = np.asarray(x, np.float64), np.asarray(loss, np.float64)
  order = np.lexsort((loss, x))
  keep, best = [], math.inf
  for i in order:
    if loss[i] < best:
      keep.append(int(i))
      best = loss[i]
  return np.asarray(keep, np.int64)
