"""XLA's attention on the dense mask: runs everywhere, materialises the B x H x T x T logits."""

from __future__ import annotations

import jax

from jaxlm.model.kernels.base import Kernel
from jaxlm.model.masks import MaskSpec


def attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec: MaskSpec) -> jax.Array:
  if spec.kind == "bidirectional" and spec.segment_ids_BxT is None:
    mask = None
  else:
    mask = spec.dense(q_BxTxHxK.shape[1])
  return jax.nn.dot_product_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, mask=mask,
                                      implementation="xla")


KERNEL = Kernel(
  name="xla", attention=attention, backends=("cpu", "gpu", "tpu"),
  auto=lambda backend, dtype: True,  # the fallback: last in the registry
  runs_on="CPU, GPU, TPU (any dtype)",
  how="`jax.nn.dot_product_attention(implementation='xla')` on the dense B x 1 x T x T mask; "
      "materialises the logits. `attention='auto'` picks it where no other kernel applies.")
