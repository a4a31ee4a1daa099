"""The power-law fit recovers known parameters, its intervals cover them, and the frontier is the
lower envelope."""

from __future__ import annotations

import numpy as np
import pytest

from jaxlm.studies import power_law


# The reducible term is 0.5-3x E at the smallest C, as in a real grid (else E alone fits).
@pytest.mark.parametrize("E, A, alpha", [(1.7, 40.0, 0.12), (2.5, 5e4, 0.35), (0.0, 5.0, 0.07)])
def test_fit_recovers_a_synthetic_power_law(E, A, alpha):
  rng = np.random.default_rng(0)
  C = np.logspace(12, 18, 25)
  loss = (E + A * C ** -alpha) * np.exp(rng.normal(0, 0.003, C.shape))
  law = power_law.fit(C, loss)
  assert abs(law.alpha - alpha) < 0.1 * alpha + 0.01
  assert abs(law.E - E) < 0.1 * max(E, 0.1) + 0.05
  assert law.alpha_interval[1] - law.alpha_interval[0] < 0.2 * alpha  # a narrow interval
  np.testing.assert_allclose(law(C), E + A * C ** -alpha, rtol=0.01)


def test_exact_points_fit_exactly_and_three_points_have_no_interval():
  C = np.array([1e3, 1e4, 1e5, 1e6])
  law = power_law.fit(C, 2.0 + 30.0 * C ** -0.5)
  assert law.rms_log_residual < 1e-6
  assert abs(law.alpha - 0.5) < 1e-3 and abs(law.E - 2.0) < 1e-3
  three = power_law.fit(C[:3], 2.0 + 30.0 * C[:3] ** -0.5)
  assert np.isnan(three.alpha_interval[0])
  with pytest.raises(ValueError, match="at least 3"):
    power_law.fit(C[:2], [3.0, 2.5])


def test_intervals_contain_the_truth_at_about_their_level():
  rng = np.random.default_rng(1)
  C = np.logspace(10, 16, 12)
  covered = 0
  trials = 60
  for _ in range(trials):
    loss = (2.0 + 20.0 * C ** -0.2) * np.exp(rng.normal(0, 0.01, C.shape))
    lo, hi = power_law.fit(C, loss).alpha_interval
    covered += lo <= 0.2 <= hi
  assert covered / trials > 0.8


def test_lower_envelope():
  x = [1, 2, 2, 3, 4, 5]
  loss = [5.0, 4.0, 4.5, 4.2, 3.0, 3.5]
  np.testing.assert_array_equal(power_law.lower_envelope(x, loss), [0, 1, 4])
