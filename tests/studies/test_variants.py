"""The comparison's variants: each builds a valid pre-training config that differs from the
shared one only in its own fields (and the token types its rows need)."""

from __future__ import annotations

import dataclasses

import pytest

from jaxlm.config import ConfigError, load_config
from jaxlm.objectives import OBJECTIVES
from jaxlm.studies import compare, variants
from jaxlm.studies.config import CompareConfig


def _fields(config, prefix=""):
  out = {}
  for f in dataclasses.fields(config):
    value = getattr(config, f.name)
    if dataclasses.is_dataclass(value):
      out.update(_fields(value, f"{prefix}{f.name}."))
    else:
      out[prefix + f.name] = value
  return out


@pytest.mark.parametrize("name", sorted(variants.VARIANTS))
def test_a_variant_changes_only_its_own_fields(name):
  base = load_config("compare/tiny", expected=CompareConfig).pretrain
  config = variants.pretrain_config(base, name)
  changed = {k for k, v in _fields(config).items() if _fields(base)[k] != v}
  own = {dotted for dotted, _ in variants.VARIANTS[name][1]}
  if OBJECTIVES[config.objective].token_types:
    own.add("model.type_vocab_size")
  assert changed <= own
  assert config.model.type_vocab_size >= OBJECTIVES[config.objective].token_types


def test_every_objective_is_a_variant_under_its_own_name():
  assert set(OBJECTIVES) <= set(variants.VARIANTS)


def test_an_unknown_variant_names_the_allowed_ones():
  config = load_config("compare/tiny", {"objectives": "mlm,bert"}, expected=CompareConfig)
  with pytest.raises(ConfigError, match="config.objectives: 'bert' is not a variant; allowed: "
                                        "clm, mlm, mlm_nsp"):
    compare.check(config)
  with pytest.raises(ConfigError, match="config.objectives='mlm,mlm': a comma-separated list "
                                        "of distinct variants"):
    load_config("compare/tiny", {"objectives": "mlm,mlm"}, expected=CompareConfig)
