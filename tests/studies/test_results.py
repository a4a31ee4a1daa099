"""The studies' typed results survive their JSON caches."""

import json

from jaxlm.studies.results import HeldoutQuality


def test_held_out_quality_survives_its_cache():
  quality = HeldoutQuality(loss=5.481183528900146, accuracy=0.176, accuracy_halfwidth=0.0021,
                           predicted_tokens=91234, unigram_baseline=0.05,
                           row_mode_baseline=0.052, bits_per_byte=1.9,
                           extra={"bits_per_byte_kind": "masked-token", "nsp_loss": 0.69})
  assert HeldoutQuality.from_json(json.loads(json.dumps(quality.to_json()))) == quality
