"""Attention masks and the kernel dispatch.

BERT, GPT and prefix-LM differ here and only here in the backbone: which key each query may see.
`MaskSpec` says it in data (kind + segment ids + prefix lengths); each kernel turns it into what it
needs. Kernels: `xla` everywhere, `cudnn` (flash attention) on NVIDIA GPUs. A TPU Pallas kernel
(`jaxlm/splash.py`) registers itself in `KERNELS` when first asked for.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Literal

import jax
import jax.numpy as jnp

MaskKind = Literal["causal", "bidirectional", "prefix"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MaskSpec:
  """Who may attend to whom.

  kind: causal (GPT), bidirectional (BERT) or prefix (bidirectional over the first
    `prefix_len_B` positions of each row, causal after them).
  segment_ids_BxT: document id of each token in a packed row; attention never crosses documents;
    0 marks padding. None: one document per row, no padding.
  prefix_len_B: per-row prefix length, for kind == 'prefix'.
  """

  kind: MaskKind = dataclasses.field(metadata=dict(static=True))
  segment_ids_BxT: jax.Array | None = None
  prefix_len_B: jax.Array | None = None

  def dense(self, T: int) -> jax.Array:
    """The boolean mask_Bx1xTxT (True: may attend) every kernel can fall back on."""
    q_T1 = jnp.arange(T)[:, None]
    k_1T = jnp.arange(T)[None, :]
    if self.kind == "bidirectional":
      allowed_BxTxT = jnp.ones((1, T, T), bool)
    elif self.kind == "causal":
      allowed_BxTxT = (k_1T <= q_T1)[None]
    else:
      in_prefix_BxT = k_1T < self.prefix_len_B[:, None]
      allowed_BxTxT = (k_1T <= q_T1)[None] | in_prefix_BxT[:, None, :]
    if self.segment_ids_BxT is not None:
      seg_BxT = self.segment_ids_BxT
      same_BxTxT = (seg_BxT[:, :, None] == seg_BxT[:, None, :]) & (seg_BxT[:, None, :] > 0)
      # A padding query sees itself only, so its softmax row stays finite.
      allowed_BxTxT = (allowed_BxTxT & same_BxTxT) | jnp.eye(T, dtype=bool)[None]
    return allowed_BxTxT[:, None]


def _xla(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec: MaskSpec) -> jax.Array:
  if spec.kind == "bidirectional" and spec.segment_ids_BxT is None:
    mask = None
  else:
    mask = spec.dense(q_BxTxHxK.shape[1])
  return jax.nn.dot_product_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, mask=mask,
                                      implementation="xla")


def _cudnn(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec: MaskSpec) -> jax.Array:
  # Plain causal / bidirectional rows take cuDNN's built-in masks (the causal kernel skips the
  # upper triangle); packed or prefix rows pass the dense mask, which cuDNN applies as a bias.
  if spec.segment_ids_BxT is None and spec.kind != "prefix":
    return jax.nn.dot_product_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK,
                                        is_causal=spec.kind == "causal", implementation="cudnn")
  return jax.nn.dot_product_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK,
                                      mask=spec.dense(q_BxTxHxK.shape[1]), implementation="cudnn")


Kernel = Callable[[jax.Array, jax.Array, jax.Array, MaskSpec], jax.Array]
KERNELS: dict[str, Kernel] = {"xla": _xla, "cudnn": _cudnn}


def resolve_kernel(name: str, dtype: str) -> str:
  """'auto' picks Pallas splash attention on TPUs, cuDNN flash attention on NVIDIA GPUs in
  bf16, and XLA elsewhere."""
  backend = jax.default_backend()
  if name == "auto":
    name = {"tpu": "splash", "gpu": "cudnn" if dtype == "bfloat16" else "xla"}.get(backend, "xla")
  if name == "splash" and name not in KERNELS:
    from jaxlm import splash  # Pallas loads only where it runs
    splash.register(interpret=backend != "tpu")
  return name


def causal_skips_half(kernel: str, kind: MaskKind, packed: bool) -> bool:
  """Whether the kernel computes only the lower triangle (for honest FLOP counts)."""
  return kernel == "cudnn" and kind == "causal" and not packed


def dot_product_attention(q_BxTxHxK: jax.Array, k_BxTxHxK: jax.Array, v_BxTxHxK: jax.Array,
                          spec: MaskSpec, kernel: str = "xla") -> jax.Array:
  return KERNELS[kernel](q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec)


def dropout_attention(q_BxTxHxK: jax.Array, k_BxTxHxK: jax.Array, v_BxTxHxK: jax.Array,
                      spec: MaskSpec, rate: float, key: jax.Array) -> jax.Array:
  """Attention with dropout on the probabilities, as BERT and GPT-2 train. No fused kernel
  drops probabilities, so this is the explicit form: softmax in float32 over the masked scores,
  each probability kept with chance 1 - rate and scaled by 1 / (1 - rate), then the values."""
  T, K = q_BxTxHxK.shape[1], q_BxTxHxK.shape[-1]
  scores_BxHxTxT = jnp.einsum("bthk,bshk->bhts", q_BxTxHxK, k_BxTxHxK,
                              preferred_element_type=jnp.float32) / jnp.sqrt(jnp.float32(K))
  scores_BxHxTxT = jnp.where(spec.dense(T), scores_BxHxTxT, jnp.finfo(jnp.float32).min)
  probs_BxHxTxT = jax.nn.softmax(scores_BxHxTxT, axis=-1)
  keep_BxHxTxT = jax.random.bernoulli(key, 1.0 - rate, probs_BxHxTxT.shape)
  probs_BxHxTxT = jnp.where(keep_BxHxTxT, probs_BxHxTxT / (1.0 - rate), 0.0)
  return jnp.einsum("bhts,bshk->bthk", probs_BxHxTxT.astype(v_BxTxHxK.dtype), v_BxTxHxK)
