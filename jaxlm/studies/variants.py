"""What `jaxlm compare` can pre-train side by side: every registered objective under its own name,
and named variants of one (an objective plus the options that make it). Adding a variant is one
line in VARIANTS; tests/eval/test_variants.py then checks it builds a valid config.

Every variant is the comparison's one `pretrain` config with only these fields changed, so data
source, tokenizer, model shape, steps and schedule stay shared. The one field a variant may need
beyond its own options, `model.type_vocab_size`, is raised to what its objective's rows carry
(2 for next-sentence pairs): two embedding rows, counted in the report's parameter column.
"""

from __future__ import annotations

import sys

from jaxlm.config import Config, ConfigError, replace_at
from jaxlm.objectives import OBJECTIVES


def _described(objective: str) -> str:
  """An objective's own name for itself: its file's docstring up to the first colon."""
  module = (sys.modules.get(f"jaxlm.objectives.{objective}")
            or sys.modules[OBJECTIVES[objective].loss_sums.__module__])
  return (module.__doc__ or objective).split(":")[0].strip()


# name -> (what it is, (dotted field, value) overrides of the pretrain config)
VARIANTS: dict[str, tuple[str, tuple[tuple[str, object], ...]]] = {
  **{name: (_described(name), (("objective", name),)) for name in OBJECTIVES},
  "mlm_wwm": ("MLM with whole-word masking (BERT, 2019 release)",
              (("objective", "mlm"), ("mlm.masking", "whole_word"))),
  "mlm_span": ("MLM with SpanBERT's span masking",
               (("objective", "mlm"), ("mlm.masking", "span"))),
  "mlm_nsp_wwm": ("MLM + next-sentence prediction with whole-word masking",
                  (("objective", "mlm_nsp"), ("mlm.masking", "whole_word"))),
}


def check(name: str) -> None:
  if name not in VARIANTS:
    raise ConfigError(f"config.objectives: {name!r} is not a variant; allowed: "
                      f"{', '.join(VARIANTS)}")


def pretrain_config(base: Config, name: str) -> Config:
  """`base` as variant `name`: its overrides, and the token types its objective's rows need."""
  check(name)
  config = base
  for dotted, value in VARIANTS[name][1]:
    config = replace_at(config, dotted, value)
  needs = OBJECTIVES[config.objective].token_types
  if config.model.type_vocab_size < needs:
    config = replace_at(config, "model.type_vocab_size", needs)
  return config.validate()
