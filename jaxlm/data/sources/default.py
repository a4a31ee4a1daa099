"""`default`: the public-domain corpus embedded in the package (`jaxlm/corpus`, see SOURCES.md)."""

from __future__ import annotations

from jaxlm.data.sources import text

FORM = "default"  # how a source of this scheme is written

def read(source: str, data_config) -> dict[str, str]:
  del source, data_config
  return text.read_documents(text.source_files("default"))
