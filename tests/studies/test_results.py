"""The studies' typed results survive their JSON caches."""

import json

from jaxlm.studies.results import HeldoutQuality


def test_held_out_quality_survives_its_cache():
  quality = HeldoutQuality(loss=5.481183528900146, accuracy=0.176, accuracy_halfwidth=0.0021,
                           predicted_tokens=91234, unigram_baseline=0.05,
                           row_mode_baseline=0.052, bits_per_byte=1.9,
                           extra={"bits_per_byte_kind": "masked-token", "nsp_loss": 0.69})
  assert HeldoutQuality.from_json(json.loads(json.dumps(quality.to_json()))) == quality


def test_holm_draws_more_resamples_where_the_family_needs_them():
  import numpy as np

  from jaxlm import stats
  from jaxlm.studies.results import Difference, holm, zero_shot_difference
  rng = np.random.default_rng(0)
  a, b = (rng.random(2000) < 0.6) * 1.0, (rng.random(2000) < 0.4) * 1.0  # 20 points apart
  strong = zero_shot_difference("blimp", "clm", "mlm", a, b)
  assert strong.interval.p_value == 2 / 2001 and strong.resamples == 2000

  def family(size: int) -> list[Difference]:
    return [strong] + [Difference("finetune", "t", "x", "y", "seeds",
                                  stats.Interval(0.0, -1.0, 1.0, 0.5))] * (size - 1)

  # 21 tests: 21 x 0.001 <= 0.05, the 2,000 resamples decide and stay as they were.
  small = holm(family(21))[0]
  assert small.interval == strong.interval and small.resamples == 2000 and small.significant
  # 110 tests: at 2,000 resamples Holm's p could not go below 110 x 0.001 = 0.11.
  large = holm(family(110))[0]
  assert large.resamples == 440_000 and large.to_json()["bootstrap_resamples"] == 440_000
  assert large.interval.p_value < 0.05 / 110 and large.significant
  assert large.interval.estimate == strong.interval.estimate
  assert abs(large.interval.low - strong.interval.low) < 0.5  # the same distribution
