"""cuDNN flash attention on NVIDIA GPUs (bf16 / fp16)."""

from __future__ import annotations

import jax

from jaxlm.model.kernels.base import Kernel
from jaxlm.model.masks import MaskSpec


def attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec: MaskSpec) -> jax.Array:
  # Plain causal / bidirectional rows take cuDNN's built-in masks (the causal kernel skips the
  # upper triangle); packed or prefix rows pass the dense mask, which cuDNN applies as a bias.
  if spec.segment_ids_BxT is None and spec.kind != "prefix":
    return jax.nn.dot_product_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK,
                                        is_causal=spec.kind == "causal", implementation="cudnn")
  return jax.nn.dot_product_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK,
                                      mask=spec.dense(q_BxTxHxK.shape[1]), implementation="cudnn")


KERNEL = Kernel(
  name="cudnn", attention=attention, backends=("gpu",),
  auto=lambda backend, dtype: backend == "gpu" and dtype == "bfloat16",
  runs_on="NVIDIA GPU, bf16 / fp16",
  how="cuDNN flash attention; built-in causal mask (skips the upper triangle), dense mask as a "
      "bias for packed or prefix rows. `attention='auto'` picks it on GPU in bf16.",
  skips_causal_half=lambda kind, packed: kind == "causal" and not packed,
  dtypes=("bfloat16", "float16"))
