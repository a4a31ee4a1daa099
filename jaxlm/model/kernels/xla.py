"""XLA's attention on the dense mask: runs everywhere, materialises the B x H x T x T logits.

The forward pass is `jax.nn.dot_product_attention(implementation='xla')`'s arithmetic (logits in
the input dtype, the softmax in float32, probabilities cast back). The backward pass is written
out, as FlashAttention's is: with the saved probabilities P, dV = P^T dO, dS = P (dO V^T - D)
where D = rowsum(dO * O) is one number per query, dQ and dK from dS. Autodiff of the softmax
instead reduces P * dP over every key, and XLA:CPU fuses that reduction into the dO V^T product
slowly; the written-out pass is about 30% faster per layer on one core at the main job's shape
(benchmarks/README.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxlm.model.kernels.base import Kernel
from jaxlm.model.masks import MaskSpec


def _probabilities(q_BxTxHxK, k_BxSxHxK, mask_Bx1xTxS):
  scale = q_BxTxHxK.shape[-1] ** -0.5
  logits_BxHxTxS = jnp.einsum("bthk,bshk->bhts", q_BxTxHxK, k_BxSxHxK).astype(jnp.float32) * scale
  if mask_Bx1xTxS is not None:
    logits_BxHxTxS = jnp.where(mask_Bx1xTxS, logits_BxHxTxS, -jnp.inf)
  return jax.nn.softmax(logits_BxHxTxS, axis=-1).astype(q_BxTxHxK.dtype)


def _forward(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, mask_Bx1xTxS):
  p_BxHxTxS = _probabilities(q_BxTxHxK, k_BxSxHxK, mask_Bx1xTxS)
  o_BxTxHxK = jnp.einsum("bhts,bshk->bthk", p_BxHxTxS, v_BxSxHxK)
  return o_BxTxHxK, (q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, o_BxTxHxK, p_BxHxTxS)


@jax.custom_vjp
def dense_attention(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, mask_Bx1xTxS):
  """softmax(q k^T / sqrt(K)) v where `mask_Bx1xTxS` (True: may attend; None: everywhere).
  Every query must see at least one key (`MaskSpec.dense` lets a padding query see itself)."""
  return _forward(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, mask_Bx1xTxS)[0]


def _backward(saved, do_BxTxHxK):
  q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, o_BxTxHxK, p_BxHxTxS = saved
  dtype, scale = q_BxTxHxK.dtype, q_BxTxHxK.shape[-1] ** -0.5
  dv_BxSxHxK = jnp.einsum("bhts,bthk->bshk", p_BxHxTxS, do_BxTxHxK)
  dp_BxHxTxS = jnp.einsum("bthk,bshk->bhts", do_BxTxHxK, v_BxSxHxK).astype(jnp.float32)
  d_BxHxT = jnp.einsum("bthk,bthk->bht", do_BxTxHxK.astype(jnp.float32),
                       o_BxTxHxK.astype(jnp.float32))
  ds_BxHxTxS = (p_BxHxTxS.astype(jnp.float32) * (dp_BxHxTxS - d_BxHxT[..., None]) * scale)
  ds_BxHxTxS = ds_BxHxTxS.astype(dtype)
  dq_BxTxHxK = jnp.einsum("bhts,bshk->bthk", ds_BxHxTxS, k_BxSxHxK)
  dk_BxSxHxK = jnp.einsum("bhts,bthk->bshk", ds_BxHxTxS, q_BxTxHxK)
  return dq_BxTxHxK, dk_BxSxHxK, dv_BxSxHxK, None


dense_attention.defvjp(_forward, _backward)


def attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec: MaskSpec) -> jax.Array:
  if spec.kind == "bidirectional" and spec.segment_ids_BxT is None:
    return dense_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, None)
  T = q_BxTxHxK.shape[1]
  mask_Bx1xTxT = spec.dense(T)
  if spec.kind != "causal" or T % 2:
    return dense_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, mask_Bx1xTxT)
  # Causal: the first half of the queries sees no key of the second half, so it attends over the
  # first half only and a quarter of the T x T block is never computed (as flash kernels skip
  # masked blocks; the main job's step about 4% faster on 2 CPU cores, benchmarks/README.md).
  h = T // 2
  first = dense_attention(q_BxTxHxK[:, :h], k_BxTxHxK[:, :h], v_BxTxHxK[:, :h],
                          mask_Bx1xTxT[:, :, :h, :h])
  second = dense_attention(q_BxTxHxK[:, h:], k_BxTxHxK, v_BxTxHxK, mask_Bx1xTxT[:, :, h:])
  return jnp.concatenate([first, second], axis=1)


KERNEL = Kernel(
  name="xla", attention=attention, backends=("cpu", "gpu", "tpu"),
  auto=lambda backend, dtype: True,  # the fallback: last in the registry
  runs_on="CPU, GPU, TPU (any dtype)",
  how="XLA's dense attention on the B x 1 x T x T mask (`jax.nn.dot_product_attention`'s "
      "arithmetic, its backward pass written out); materialises the logits; causal masks skip "
      "the quarter of the block no query sees. "
      "`attention='auto'` picks it where no other kernel applies.")
