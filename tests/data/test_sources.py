"""The data-source registry's contract: every registered source has its module, its `read` and
its `FORM`; its scheme resolves; an unknown scheme is one line naming every form."""

import inspect

import pytest

from jaxlm.data import sources
from jaxlm.errors import ConfigError


@pytest.mark.parametrize("name", sorted(sources.SOURCES))
def test_every_source_keeps_the_contract(name):
  module = sources.module(name)
  assert list(inspect.signature(module.read).parameters) == ["source", "data_config"]
  assert isinstance(module.FORM, str) and module.FORM.startswith(name)
  written = module.FORM if name == "default" else f"{name}:x"
  assert sources.scheme(written) == name


def test_an_unknown_scheme_names_every_form():
  with pytest.raises(ConfigError) as err:
    sources.scheme("ftp://host/x")
  message = str(err.value)
  assert "\n" not in message and "config.data.source='ftp://host/x'" in message
  for name in sources.SOURCES:
    assert repr(sources.module(name).FORM) in message


def test_no_source_imports_tfds_before_it_reads():
  import subprocess
  import sys
  code = ("import sys; from jaxlm.data import sources; [sources.module(s) for s in sources.SOURCES];"
          " print('tensorflow_datasets' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
  assert out.stdout.strip() == "False", out.stderr
