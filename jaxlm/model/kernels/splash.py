"""Splash attention: the TPU Pallas flash-attention kernel, behind the `KERNELS` registry.

Registered as `splash` (TPU) and `splash_interpret` (the Pallas interpreter, any backend, for
tests); importing this module registers nothing. Every `MaskSpec` runs through it with the same
semantics as `MaskSpec.dense`:

  kind           splash mask (static unless noted)                      block skipping
  bidirectional  FullMask                                               none needed
  causal         CausalMask                                             upper triangle skipped
  prefix         dynamic (traced) mask `k <= q or k < prefix_len[b]`    blocks past the prefix
                 above the diagonal skipped
  + segment ids  `SegmentIds(q, kv)` on top of any of the above; padding (id 0) tokens get
                 unique negative ids, so a padding query sees itself only, as in `dense()`.

Splash masks are static numpy objects fixed when the kernel is built, and a prefix-LM row's
prefix length is per row and dynamic, so `kind="prefix"` uses splash's *dynamic* mask: a bool
(1, T, T) `jax.Array` built per row inside the batch vmap (the batch's mask costs B*T*T bytes, as
much as `dense()`; the B*H*T*T logits are never materialised). The kernel is still splash,
including its backward pass.

Layout: splash works on one example, (H, T, K), and does not scale the logits; this module
transposes (B, T, H, K) -> (B, H, T, K), multiplies q by 1/sqrt(K) and vmaps over the batch.
Inside a mesh context (`jax.set_mesh`, as in training) the call is wrapped in `jax.shard_map`,
batch over the ('data', 'fsdp') axes and heads over 'tensor' (the `sharding.LOGICAL_RULES`
layout), since the Pallas custom call cannot be partitioned by GSPMD.

Fallback to the XLA dense-mask path (same function as `KERNELS["xla"]`), silently and
numerically equivalent: when T is not a multiple of 128 (splash tiles T in blocks of 128, 256
or 512; the block is the largest of those dividing T). Not a fallback but an error: calling it
on a non-TPU backend without `interpret=True` (Mosaic lowers for TPU only).

Pallas interpret mode (`interpret=True`) runs the same kernel code on CPU, slowly, for tests.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu.splash_attention import (
  splash_attention_kernel as splash_kernel,
)
from jax.experimental.pallas.ops.tpu.splash_attention import (
  splash_attention_mask as splash_mask,
)
from jax.sharding import PartitionSpec as P

from jaxlm.model.kernels import xla
from jaxlm.model.kernels.base import Kernel
from jaxlm.model.masks import MaskSpec

_BLOCKS = (512, 256, 128)

def block_size(T: int) -> int | None:
  """The splash tile for sequence length T, or None when splash cannot tile it (T % 128)."""
  return next((b for b in _BLOCKS if T % b == 0), None)


def _block_sizes(block: int) -> splash_kernel.BlockSizes:
  # Backward blocks must be set, or the kernel has no dq / dkv mask info and cannot differentiate.
  return splash_kernel.BlockSizes(
    block_q=block, block_kv=block, block_kv_compute=block,
    block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
    block_q_dq=block, block_kv_dq=block)


def _static_kernel(kind: str, H: int, T: int, block: int, interpret: bool):
  # Built at trace time, not cached: the kernel holds jnp arrays, which would be tracers if the
  # first build happened under jit. splash caches the numpy mask processing itself.
  head_mask = splash_mask.CausalMask((T, T)) if kind == "causal" else splash_mask.FullMask((T, T))
  return splash_kernel.make_splash_mha(
    splash_mask.MultiHeadMask([head_mask] * H), block_sizes=_block_sizes(block),
    head_shards=1, q_seq_shards=1, interpret=interpret)


def _dynamic_kernel(mask_1xTxT: jax.Array, block: int, interpret: bool):
  # One mask head serves every query head (splash broadcasts a single-head mask info).
  kernel = splash_kernel.make_splash_mha(mask_1xTxT, block_sizes=_block_sizes(block),
                                         head_shards=1, q_seq_shards=1, interpret=interpret)
  # make_splash_mha turns MaskInfo.is_dynamic_mask into a jnp array, a tracer when the kernel is
  # built under jit/vmap, and the kernel's __call__ then branches on it in Python. It is only a
  # flag (it names the profiler scope), so put the Python bool back.
  fix = lambda info: None if info is None else info._replace(is_dynamic_mask=True)
  return splash_kernel.SplashAttentionKernel(
    fix(kernel.fwd_mask_info), fix(kernel.dq_mask_info), fix(kernel.dkv_mask_info),
    **kernel.kwargs)


def _segment_ids(seg_T: jax.Array) -> splash_kernel.SegmentIds:
  # Padding (0) would match other padding under splash's plain equality test; a unique negative
  # id per padding position leaves a padding query only itself, exactly as MaskSpec.dense does.
  ids_T = jnp.where(seg_T == 0, -1 - jnp.arange(seg_T.shape[0], dtype=jnp.int32),
                    seg_T.astype(jnp.int32))
  return splash_kernel.SegmentIds(q=ids_T, kv=ids_T)


def _splash_BxHxTxK(q, k, v, seg_BxT, prefix_B, *, kind: str, block: int, interpret: bool):
  """Per-device body: q, k, v are (B, H, T, K), q already scaled."""
  _, H, T, _ = q.shape

  if kind == "prefix":
    def one(q_HxTxK, k_HxTxK, v_HxTxK, seg_T, prefix):
      q_T1, k_1T = jnp.arange(T)[:, None], jnp.arange(T)[None, :]
      mask_1xTxT = ((k_1T <= q_T1) | (k_1T < prefix))[None]
      kernel = _dynamic_kernel(mask_1xTxT, block, interpret)
      segment_ids = None if seg_T is None else _segment_ids(seg_T)
      return kernel(q_HxTxK, k_HxTxK, v_HxTxK, segment_ids=segment_ids)

    return jax.vmap(one)(q, k, v, seg_BxT, prefix_B)

  kernel = _static_kernel(kind, H, T, block, interpret)
  if seg_BxT is None:
    return jax.vmap(lambda q_, k_, v_: kernel(q_, k_, v_))(q, k, v)
  return jax.vmap(lambda q_, k_, v_, seg_T: kernel(q_, k_, v_, segment_ids=_segment_ids(seg_T)))(
    q, k, v, seg_BxT)


def _mesh_specs(mesh, B: int, H: int):
  """shard_map specs (batch over data x fsdp, heads over tensor), dropping axes that don't divide."""
  from jaxlm.sharding import logical_to_spec  # noqa: PLC0415 (keeps this module's imports light)

  batch_axes, _, head_axes, _ = logical_to_spec(("batch", "seq", "heads", "kv"))

  def fit(axes, size):
    if axes is None:
      return None
    names = axes if isinstance(axes, tuple) else (axes,)
    names = tuple(n for n in names if n in mesh.shape)
    return names if names and size % math.prod(mesh.shape[n] for n in names) == 0 else None

  b, h = fit(batch_axes, B), fit(head_axes, H)
  return P(b, h, None, None), P(b, None), P(b)


def splash_attention(q_BxTxHxK: jax.Array, k_BxTxHxK: jax.Array, v_BxTxHxK: jax.Array,
                     spec: MaskSpec, *, interpret: bool = False) -> jax.Array:
  """Attention with the Pallas splash kernel; same contract and mask semantics as KERNELS['xla'].

  q, k, v: (B, T, H, K), equal head counts. Returns o_BxTxHxK in q's dtype. T % 128 != 0 falls
  back to the XLA dense-mask path. `interpret=True` runs the kernel in Pallas interpret mode (works
  on CPU); without it a non-TPU backend raises ValueError.
  """
  B, T, H, K = q_BxTxHxK.shape
  block = block_size(T)
  if block is None:
    return xla.attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK,
                         MaskSpec(spec.kind, spec.segment_ids_BxT, spec.prefix_len_B))
  if not interpret and jax.default_backend() != "tpu":
    raise ValueError(f"the splash kernel is TPU-only (backend is {jax.default_backend()!r}); "
                     "use attention='xla' (or interpret=True for a slow reference run)")
  if spec.kind == "prefix" and spec.prefix_len_B is None:
    raise ValueError("MaskSpec(kind='prefix') needs prefix_len_B")

  to_BxHxTxK = lambda x: jnp.swapaxes(x, 1, 2)
  q = to_BxHxTxK(q_BxTxHxK * jnp.asarray(1.0 / math.sqrt(K), q_BxTxHxK.dtype))
  k, v = to_BxHxTxK(k_BxTxHxK), to_BxHxTxK(v_BxTxHxK)
  seg_BxT = spec.segment_ids_BxT
  prefix_B = spec.prefix_len_B if spec.kind == "prefix" else None

  body = functools.partial(_splash_BxHxTxK, kind=spec.kind, block=block, interpret=interpret)
  mesh = jax.sharding.get_abstract_mesh()
  if not mesh.empty:
    qkv_spec, seg_spec, prefix_spec = _mesh_specs(mesh, B, H)
    body = jax.shard_map(
      body, mesh=mesh, out_specs=qkv_spec, check_vma=False,
      in_specs=(qkv_spec, qkv_spec, qkv_spec,
                P() if seg_BxT is None else seg_spec,
                P() if prefix_B is None else prefix_spec))
  o_BxHxTxK = body(q, k, v, seg_BxT, prefix_B)
  return to_BxHxTxK(o_BxHxTxK)


def _interpreted(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec: MaskSpec) -> jax.Array:
  return splash_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, spec, interpret=True)


_HOW = ("Pallas splash attention: static causal / full masks, segment ids, and a dynamic per-row "
        "mask for prefix-LM; skips fully masked blocks. T not a multiple of 128 falls back to "
        "`xla`. `attention='auto'` picks it on TPU.")
KERNEL = Kernel(
  name="splash", attention=splash_attention, backends=("tpu",),
  auto=lambda backend, dtype: backend == "tpu", runs_on="TPU", how=_HOW,
  skips_causal_half=lambda kind, packed: False)  # counted dense: blocks skipped vary with packing
INTERPRET_KERNEL = Kernel(
  name="splash_interpret", attention=_interpreted, backends=("cpu", "gpu", "tpu"),
  auto=lambda backend, dtype: False, runs_on="anywhere, slowly (Pallas interpret mode)",
  how="The splash kernel's code run by the Pallas interpreter: for testing it on CPU.")
