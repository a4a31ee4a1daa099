"""The key/value cache of generation, as data: `KVCache`.

A leaf module: it imports nothing from jaxlm. The backbone holds one `KVCache` for all layers
(keys and values with a leading L axis); each layer's attention sees its own slice.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KVCache:
  """Keys and values of the tokens so far, in S slots per row.

  k, v: [L, B, S, H, K] for the whole model, [B, S, H, K] inside one layer.
  valid_BxS: slots holding real tokens (left-padded prompts leave invalid slots at the start).
  start: slot of the first token of the chunk being run; its T tokens go to start..start+T-1.
  """

  k: jax.Array
  v: jax.Array
  valid_BxS: jax.Array
  start: jax.Array

  @classmethod
  def empty(cls, L: int, B: int, S: int, H: int, K: int, dtype) -> KVCache:
    zeros = jnp.zeros((L, B, S, H, K), dtype)
    return cls(zeros, zeros, jnp.zeros((B, S), bool), jnp.int32(0))

  def layer(self, k: jax.Array, v: jax.Array) -> KVCache:
    """The same slots and valid mask around one layer's keys and values."""
    return dataclasses.replace(self, k=k, v=v)

  def write(self, k_BxTxHxK: jax.Array, v_BxTxHxK: jax.Array) -> KVCache:
    """This chunk's keys and values written into slots start..start+T-1 (one layer)."""
    at = (0, self.start, 0, 0)
    return self.layer(jax.lax.dynamic_update_slice(self.k, k_BxTxHxK.astype(self.k.dtype), at),
                      jax.lax.dynamic_update_slice(self.v, v_BxTxHxK.astype(self.v.dtype), at))

  def mask_Bx1xTxS(self, T: int) -> jax.Array:
    """Each query of the chunk sees every valid slot up to its own (causal over slots)."""
    S = self.valid_BxS.shape[1]
    query_slot_T = self.start + jnp.arange(T)
    upto_TxS = jnp.arange(S)[None, :] <= query_slot_T[:, None]
    return (self.valid_BxS[:, None, :] & upto_TxS[None])[:, None]
