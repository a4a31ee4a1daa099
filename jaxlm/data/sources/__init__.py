"""Data sources, keyed by the scheme of `config.data.source`: `default`, `text:`, `tfds:`.

Each source is a module here with `read(source, data_config) -> {document name: text}` and a
`FORM` string (how its sources are written, for error messages); this dict names them (modules
load on first use, and none imports TFDS before it reads, so TFDS loads only for `tfds:`).
Adding a source: one file, one line here, and it joins the contract test in
tests/data/test_sources.py.
"""

from __future__ import annotations

import importlib

from jaxlm.errors import ConfigError

SOURCES: dict[str, str] = {
  "default": "jaxlm.data.sources.default",
  "text": "jaxlm.data.sources.text",
  "tfds": "jaxlm.data.sources.tfds",
}


def scheme(source: str) -> str:
  """The registry key of `source`; a one-line ConfigError for an unknown one."""
  name = source if source in SOURCES else source.partition(":")[0]
  if name not in SOURCES or (name == "default") != (source == "default"):
    raise ConfigError(f"config.data.source={source!r}: unknown scheme; allowed: "
                      f"{', '.join(repr(module(s).FORM) for s in SOURCES)}")
  return name


def module(name: str):
  """The source module registered under scheme `name`."""
  return importlib.import_module(SOURCES[name])


def read_source(config) -> dict[str, str]:
  """{document name: text} for `config.data.source`."""
  return module(scheme(config.data.source)).read(config.data.source, config.data)
