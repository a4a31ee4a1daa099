"""The committed docs that are generated from code are not stale."""

from pathlib import Path

from jaxlm.config import reference
from jaxlm.model import kernels

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_config_reference_is_current():
  assert (DOCS / "config.md").read_text() == reference.markdown(), (
    "docs/config.md is stale: python -m jaxlm.config.reference > docs/config.md")


def test_config_reference_lists_every_field():
  text = reference.markdown()
  from jaxlm.config import Config
  import dataclasses

  def keys(obj, prefix=""):
    for f in dataclasses.fields(obj):
      value = getattr(obj, f.name)
      yield from keys(value, f"{prefix}{f.name}.") if dataclasses.is_dataclass(value) else [
        f"{prefix}{f.name}"]

  missing = [k for k in keys(Config()) if f"| `{k}` |" not in text]
  assert not missing


def test_kernel_table_in_the_docs_is_current():
  assert kernels.table() in (DOCS / "kernels.md").read_text()
