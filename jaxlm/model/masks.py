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
    return self._allowed(jnp.arange(T)[None, :], self.segment_ids_BxT, T)

  def rows(self, queries_BxQ: jax.Array, T: int) -> jax.Array:
    """`dense(T)`'s rows at the query positions `queries_BxQ`: mask_Bx1xQxT, for attention from
    those queries only (the last layer of a backbone asked for a few positions)."""
    seg_BxQ = (None if self.segment_ids_BxT is None
               else jnp.take_along_axis(self.segment_ids_BxT, queries_BxQ, axis=1))
    return self._allowed(queries_BxQ, seg_BxQ, T)

  def _allowed(self, q_BxQ: jax.Array, seg_BxQ: jax.Array | None, T: int) -> jax.Array:
    """mask_Bx1xQxT for queries at positions q_BxQ (of segments seg_BxQ) over T keys."""
    q_BxQx1 = q_BxQ[:, :, None]
    k_11T = jnp.arange(T)[None, None, :]
    if self.kind == "bidirectional":
      allowed_BxQxT = jnp.ones((1, q_BxQ.shape[1], T), bool)
    elif self.kind == "causal":
      allowed_BxQxT = k_11T <= q_BxQx1
    else:
      in_prefix_Bx1xT = k_11T < self.prefix_len_B[:, None, None]
      allowed_BxQxT = (k_11T <= q_BxQx1) | in_prefix_Bx1xT
    if self.segment_ids_BxT is not None:
      seg_Bx1xT = self.segment_ids_BxT[:, None, :]
      same_BxQxT = (seg_BxQ[:, :, None] == seg_Bx1xT) & (seg_Bx1xT > 0)
      # A padding query sees itself only, so its softmax row stays finite.
      allowed_BxQxT = (allowed_BxQxT & same_BxQxT) | (k_11T == q_BxQx1)
    return allowed_BxQxT[:, None]
