"""The dense layers' `dot_general`: the same product, computed as one 2-D matrix product.

`nnx.Linear` and `nnx.LinearGeneral` contract the trailing axes of an activation [B, T, ...] with
the leading axes of a kernel. Written that way, autodiff's weight gradient contracts B and T
together, and XLA:CPU computes it as a transposed copy of the activation's gradient followed by
an Eigen product. Reshaped to [B*T, in] x [in, out] first, the weight gradient is one 2-D product
that contracts the rows of both operands, which XLA:CPU runs without the copy: the main job's
training step is about 5% faster on 2 cores in an A/B within one process, and went from 0.77x to
0.86x torch eager in `benchmarks/cpu_step.py` the same day (benchmarks/README.md). The product,
its parameters and their shardings are the same; reshapes that merge leading axes keep a sharded
batch or head axis sharded. Any other contraction goes to `lax.dot_general` unchanged.
"""

from __future__ import annotations

import math

import jax
from jax import lax


def flat_dot_general(lhs: jax.Array, rhs: jax.Array, dimension_numbers, precision=None,
                     preferred_element_type=None, out_sharding=None, **kwargs) -> jax.Array:
  """`lax.dot_general`, as a [rows, in] x [in, out] product when lhs's trailing axes contract
  with rhs's leading ones and nothing is batched. Other keywords go to `lax.dot_general`."""
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
  n = len(lhs_contract)
  plain = (lhs_batch or rhs_batch or out_sharding is not None or lhs.ndim - n < 2
           or tuple(lhs_contract) != tuple(range(lhs.ndim - n, lhs.ndim))
           or tuple(rhs_contract) != tuple(range(n)))
  if plain:  # nothing to flatten (already 2-D) or not a dense layer's contraction
    return lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                           preferred_element_type=preferred_element_type,
                           out_sharding=out_sharding, **kwargs)
  rows, features = lhs.shape[:lhs.ndim - n], rhs.shape[n:]
  inner = math.prod(lhs.shape[lhs.ndim - n:])
  out = lax.dot_general(lhs.reshape(-1, inner), rhs.reshape(inner, -1), (((1,), (0,)), ((), ())),
                        precision=precision, preferred_element_type=preferred_element_type,
                        **kwargs)
  return out.reshape(*rows, *features)
