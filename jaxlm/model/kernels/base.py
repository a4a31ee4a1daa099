"""What an attention kernel is: a function of (q, k, v, MaskSpec) plus what the registry, the
FLOP count and the docs need to know about it."""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax

from jaxlm.model.masks import MaskKind, MaskSpec

AttentionFn = Callable[[jax.Array, jax.Array, jax.Array, MaskSpec], jax.Array]


@dataclasses.dataclass(frozen=True)
class Kernel:
  """One attention kernel.

  attention: (q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec) -> o_BxTxHxK, softmax(q k^T / sqrt(K)) v
    under `spec`, with exactly `MaskSpec.dense` semantics (the contract test checks it).
  backends: where it can run (`jax.default_backend()` names); asking for it elsewhere is a
    one-line ConfigError.
  auto: whether `attention='auto'` picks it on (backend, dtype); the first kernel in the
    registry that accepts wins.
  skips_causal_half: (kind, packed) -> whether it computes only the lower triangle, for honest
    FLOP counts.
  dtypes: the compute dtypes it takes (cuDNN's fused attention: bf16 and fp16 only).
  runs_on, how: the kernel table in docs/kernels.md.
  """

  name: str
  attention: AttentionFn
  backends: tuple[str, ...]
  auto: Callable[[str, str], bool]
  runs_on: str
  how: str
  skips_causal_half: Callable[[MaskKind, bool], bool] = lambda kind, packed: False
  dtypes: tuple[str, ...] = ("float32", "bfloat16", "float16")
