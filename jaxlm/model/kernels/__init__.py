"""Attention kernels: the registry and the one auto-selection rule.

Every kernel is a module in this folder defining a `Kernel` record (`base.py`); this dict names
them. Modules load on first use, so Pallas loads only where it runs and no kernel registers
itself as a side effect. Adding a kernel: one file with a `KERNEL`, one line here (before `xla`,
which `attention='auto'` falls back on), and the contract test in tests/model/test_kernels.py
checks it against `MaskSpec.dense` for every mask kind.

Two cases do not go through the registry, and attend with XLA on dense masks whose queries are
not the T keys' positions: generation runs the same `Attention` with a `KVCache`
(`model/cache.py`), and `cached_attention` attends over the valid cache slots of left-padded
prompts (not a `MaskSpec` kind; each step is one token, where a fused kernel has nothing to
fuse); and a backbone asked for a few positions (`Backbone(..., queries_BxQ=...)`) runs its last
layer's attention from those queries alone (`attention_from`, on `MaskSpec.rows`).
"""

from __future__ import annotations

import importlib

import jax

from jaxlm.errors import ConfigError
from jaxlm.model.cache import KVCache
from jaxlm.model.kernels import xla
from jaxlm.model.kernels.base import Kernel
from jaxlm.model.masks import MaskSpec

# name -> "module:attribute" of its Kernel record; 'auto' takes the first that accepts.
KERNELS: dict[str, str] = {
  "splash": "jaxlm.model.kernels.splash:KERNEL",
  "cudnn": "jaxlm.model.kernels.cudnn:KERNEL",
  "splash_interpret": "jaxlm.model.kernels.splash:INTERPRET_KERNEL",
  "xla": "jaxlm.model.kernels.xla:KERNEL",
}


def get(name: str) -> Kernel:
  if name not in KERNELS:
    raise ConfigError(f"config.model.attention={name!r}: allowed values are auto, "
                      f"{', '.join(KERNELS)}")
  module, attribute = KERNELS[name].split(":")
  return getattr(importlib.import_module(module), attribute)


def check(name: str, dtype: str) -> None:
  """A one-line ConfigError for a kernel that is not registered or does not compute in `dtype`;
  reads no backend (so it runs before a multi-process job starts JAX)."""
  if name != "auto":
    kernel = get(name)
    if dtype not in kernel.dtypes:
      raise ConfigError(f"config.model.attention={name}: computes in {', '.join(kernel.dtypes)}, "
                        f"not model.dtype={dtype}")


def resolve(name: str, dtype: str, backend: str | None = None) -> str:
  """The kernel `name` means on this backend: 'auto' picks the first registered kernel that
  accepts (backend, dtype); a named kernel must run here."""
  backend = backend or jax.default_backend()
  if name == "auto":
    return next(n for n in KERNELS if get(n).auto(backend, dtype))
  kernel = get(name)
  if backend not in kernel.backends:
    raise ConfigError(f"config.model.attention={name}: runs on {kernel.runs_on}, not on "
                      f"{backend}" + ("; splash_interpret runs its Pallas code on CPU, for tests"
                                      if name == "splash" else ""))
  check(name, dtype)
  return name


def attention(q_BxTxHxK: jax.Array, k_BxTxHxK: jax.Array, v_BxTxHxK: jax.Array, spec: MaskSpec,
              kernel: str = "xla") -> jax.Array:
  return get(kernel).attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec)


def attention_from(q_BxQxHxK: jax.Array, k_BxTxHxK: jax.Array, v_BxTxHxK: jax.Array,
                   spec: MaskSpec, queries_BxQ: jax.Array) -> jax.Array:
  """Attention from the queries at positions `queries_BxQ` only, over every key `spec` allows
  them (`MaskSpec.rows`): a backbone's last layer asked for a few positions (a read-out token,
  the masked positions). XLA on the dense rows, whatever the configured kernel: a Q x T block
  for a few queries is small, and one layer of many."""
  return xla.dense_attention(q_BxQxHxK, k_BxTxHxK, v_BxTxHxK,
                             spec.rows(queries_BxQ, k_BxTxHxK.shape[1]))


def cached_attention(q_BxTxHxK: jax.Array, cache: KVCache) -> jax.Array:
  """Queries of a generated chunk over the cache's valid slots (see the module docstring)."""
  dtype = q_BxTxHxK.dtype
  return jax.nn.dot_product_attention(q_BxTxHxK, cache.k.astype(dtype), cache.v.astype(dtype),
                                      mask=cache.mask_Bx1xTxS(q_BxTxHxK.shape[1]),
                                      implementation="xla")


def table() -> str:
  """The kernel table of docs/kernels.md, generated from the registry."""
  rows = ["| kernel | runs on | how |", "|---|---|---|"]
  rows += [f"| `{name}` | {get(name).runs_on} | {get(name).how} |" for name in KERNELS]
  return "\n".join(rows)
