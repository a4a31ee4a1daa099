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

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
  if not SHARED_DATA.is_dir():
    pytest.fail(f"../shared/data is missing (expected at {SHARED_DATA})")
  return SHARED_DATA


from launch_fakes import fake  # noqa: E402,F401 - the fake cloud tools fixture for launch tests
