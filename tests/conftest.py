"""Eight fake CPU devices for every test, so sharding is tested without accelerators."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Many tests (and the jaxlm subprocesses they start, which inherit this environment) compile the
# same tiny programs: a persistent compilation cache shared by all of them saves minutes on CI.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "/tmp/jaxlm-tests-jax-cache")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))  # the helpers_*.py modules, for tests in every subfolder


@pytest.fixture(scope="session")
def shared_data() -> Path:
  """The large shared data (GLUE, BLiMP, the full books), only where JAXLM_SHARED_DATA names it
  (CI sets it); a fresh clone skips these tests."""
  where = os.environ.get("JAXLM_SHARED_DATA", "")
  if not where:
    pytest.skip("needs the shared data: set JAXLM_SHARED_DATA=../shared/data")
  if not Path(where).is_dir():
    pytest.fail(f"JAXLM_SHARED_DATA={where}: no such directory")
  return Path(where).resolve()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
  """Text every clone has: `inaugural/` from the embedded corpus, `tinyshakespeare/` from
  tests/fixtures."""
  root = tmp_path_factory.mktemp("corpus")
  (root / "inaugural").symlink_to(REPO / "jaxlm" / "corpus" / "inaugural")
  (root / "tinyshakespeare").symlink_to(TESTS / "fixtures" / "tinyshakespeare")
  return root


from helpers.launch_fakes import fake  # noqa: E402,F401 - the fake cloud tools fixture for launch tests


def pytest_collection_modifyitems(items):
  """Everything under tests/e2e/ (whole jaxlm processes, several of them) is marked e2e."""
  for item in items:
    if "e2e" in Path(str(item.fspath)).relative_to(TESTS).parts[:1]:
      item.add_marker(pytest.mark.e2e)
