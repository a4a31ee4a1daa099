"""host_memory: when `import jaxlm` changes malloc's settings, and that a step's temporaries
then stop costing page faults (counted, not timed)."""

import os
import platform
import subprocess
import sys

import pytest

from jaxlm import host_memory

LINUX = dict(system="Linux", libc="glibc", accelerator=False, backend_started=False)


@pytest.mark.parametrize("env, overrides, expected", [
  ({}, {}, "apply"),
  ({"JAX_PLATFORMS": "cpu"}, {"accelerator": True}, "apply"),
  ({"JAX_PLATFORMS": "cpu,cuda"}, {}, "apply"),
  ({"JAXLM_MALLOC": "system"}, {}, "JAXLM_MALLOC=system"),
  ({"JAX_PLATFORMS": "cuda"}, {}, "JAX_PLATFORMS=cuda"),
  ({}, {"accelerator": True}, "an accelerator plugin is installed"),
  ({}, {"backend_started": True}, "JAX's backend started before jaxlm was imported"),
  ({}, {"system": "Darwin", "libc": ""}, "not glibc (Darwin, unknown libc)"),
  ({}, {"libc": "musl"}, "not glibc (Linux, musl)"),
])
def test_decide(env, overrides, expected):
  assert host_memory.decide(env, **{**LINUX, **overrides}) == expected


# A jitted function whose 128 MB temporary XLA:CPU allocates on every call.
PROGRAM = """
import resource, statistics, jaxlm, jax, jax.numpy as jnp
a, b = jnp.ones((4096, 8)), jnp.ones((8, 8192))
f = jax.jit(lambda a, b: jax.lax.optimization_barrier(jnp.sin(a @ b)).sum())
faults = []
for _ in range(20):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  f(a, b).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(statistics.median(faults[10:]), jaxlm.host_memory.status)
"""


def faults_per_call(malloc: str) -> tuple[float, str]:
  """The median page faults of calls 11-20, and host_memory.status, in a fresh process."""
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAXLM_MALLOC")}
  env.update(JAX_PLATFORMS="cpu", JAXLM_MALLOC=malloc)
  out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True,
                       check=True).stdout.split()
  return float(out[0]), " ".join(out[1:])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_freed_temporaries_are_reused():
  tuned, tuned_status = faults_per_call("")
  system, system_status = faults_per_call("system")
  assert (tuned_status, system_status) == ("applied", "JAXLM_MALLOC=system")
  # 128 MB of fresh pages is 32,768 faults a call with glibc's defaults. Tuned, the heap grows
  # by another block a few times first (a call's temporary is taken before the previous one is
  # freed, or a small allocation sits in the freed block), then calls reuse what it holds.
  assert system > 16_000
  assert tuned < system / 8
