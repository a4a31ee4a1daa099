"""Who may attend to whom, as data: `MaskSpec` (kind + segment ids + prefix lengths).

BERT, GPT and prefix-LM differ here and only here in the backbone. Each attention kernel turns a
`MaskSpec` into what it needs; `dense()` is the boolean form every kernel can fall back on.
A leaf module: it imports nothing from jaxlm.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

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
