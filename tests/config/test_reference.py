"""The committed docs that are generated from code are not stale."""

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from jaxlm.config import Config
from jaxlm.finetune.config import FinetuneConfig
from jaxlm.model import kernels
from jaxlm.studies.config import CompareConfig, ScaleConfig

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
_spec = importlib.util.spec_from_file_location("config_reference",
                                               REPO / "tools" / "config_reference.py")
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


def test_config_reference_is_current():
  assert (DOCS / "config.md").read_text() == reference.markdown(), (
    "docs/config.md is stale: python tools/config_reference.py > docs/config.md")


@pytest.mark.parametrize("root,prefix", [(Config, ""), (FinetuneConfig, "finetune."),
                                         (CompareConfig, ""), (ScaleConfig, "")])
def test_config_reference_lists_every_field_of_every_root(root, prefix):
  text = reference.markdown()

  def keys(obj, prefix):
    for f in dataclasses.fields(obj):
      value = getattr(obj, f.name)
      if dataclasses.is_dataclass(value):
        if root in (Config,):  # the studies' groups are documented as their own roots
          yield from keys(value, f"{prefix}{f.name}.")
      else:
        yield f"{prefix}{f.name}"

  missing = [k for k in keys(root(), prefix) if f"| `{k}` |" not in text]
  assert not missing


def test_kernel_table_in_the_docs_is_current():
  assert kernels.table() in (DOCS / "kernels.md").read_text()
