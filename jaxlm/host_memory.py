"""Freed host memory kept for reuse when JAX computes on the CPU (glibc's malloc).

XLA:CPU takes each step's temporaries as one block (about 120 MB for the main job's training
step) from whichever of its threads runs the step. glibc serves a block that large from a fresh
`mmap` and gives it back with `munmap` when it is freed, so every step writes into pages the
kernel has to fault in again: about 32,000 page faults per step of the main job, a quarter of
its time on 2 cores (benchmarks/README.md). With one malloc arena that never uses `mmap` and a
high trim threshold, a freed block stays in the heap and the next step reuses it (0 to 2,000
faults per step).

`import jaxlm` applies this once, before JAX starts its CPU client: a thread keeps the arena it
first allocated from, so a later call no longer reaches XLA's threads. It applies on Linux with
glibc when JAX will compute on the CPU (`JAX_PLATFORMS` is cpu, or unset with no accelerator
plugin installed). `JAXLM_MALLOC=system` leaves glibc's defaults alone. The cost is that the
process keeps its peak heap rather than returning it to the system.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import platform
import sys

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
TRIM_THRESHOLD = 1 << 30

# Why the last call did or did not apply (reported in benchmark lines).
status = "not applied"


def _accelerator_installed() -> bool:
  if any(True for _ in importlib.metadata.entry_points(group="jax_plugins")):
    return True
  return any(importlib.util.find_spec(name) is not None
             for name in ("jax_plugins", "jax_cuda12_plugin", "jax_cuda13_plugin",
                          "jax_rocm60_plugin", "jax_rocm7_plugin", "libtpu"))


def _backend_started() -> bool:
  if "jax" not in sys.modules:
    return False
  from jax._src import xla_bridge  # noqa: PLC0415 - only when JAX is already loaded
  started = getattr(xla_bridge, "backends_are_initialized", None)
  return bool(started and started())


def decide(env: dict[str, str], system: str, libc: str, accelerator: bool,
           backend_started: bool) -> str:
  """'apply', or why not (pure, for tests)."""
  if env.get("JAXLM_MALLOC", "") == "system":
    return "JAXLM_MALLOC=system"
  if system != "Linux" or libc != "glibc":
    return f"not glibc ({system}, {libc or 'unknown libc'})"
  platforms = env.get("JAX_PLATFORMS", "")
  if platforms and platforms.split(",")[0].strip() != "cpu":
    return f"JAX_PLATFORMS={platforms}"
  if not platforms and accelerator:
    return "an accelerator plugin is installed"
  if backend_started:
    return "JAX's backend started before jaxlm was imported"
  return "apply"


def reuse_freed_memory() -> str:
  """Apply the settings above where they help; returns (and keeps in `status`) what it did."""
  global status
  verdict = decide(dict(os.environ), platform.system(), platform.libc_ver()[0],
                   _accelerator_installed(), _backend_started())
  if verdict == "apply":
    libc = ctypes.CDLL("libc.so.6")
    ok = all(libc.mallopt(param, value) == 1 for param, value in (
      (M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)))
    verdict = "applied" if ok else "mallopt refused"
  status = verdict
  return status
