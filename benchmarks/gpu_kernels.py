"""cuDNN attention against XLA in bfloat16, the precision training runs it in, on every mask kind:
outputs and gradients, each against a float32 reference at full matmul precision on the same
bf16-rounded inputs, and proof that the compiled step really holds cuDNN's fused kernel.

  python benchmarks/gpu_kernels.py                 # on a GPU: cudnn and xla, JSON lines
  python benchmarks/gpu_kernels.py --tiny          # anywhere (CPU: xla only), a smoke test

tests/model/test_kernels.py checks every registered kernel against `MaskSpec.dense` in float32;
cuDNN's fused attention takes only fp16 / bf16, so this is the check for the dtype it runs in.
One JSON line per (kernel, mask): relative errors ‖got − ref‖ / ‖ref‖ of the output and of dq,
dk, dv (bf16 operands land between 1e-3 and 1e-2; NaN never passes), and for cudnn whether the
compiled program calls cuDNN (`cudnn_in_hlo`). With timing on (default on a GPU), the forward +
backward time of each kernel at GPT-2's attention shape. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxlm.model import kernels
from jaxlm.model.masks import MaskSpec

TOLERANCE = 2e-2  # relative, bf16 operands


def specs(B: int, T: int) -> dict[str, MaskSpec]:
  """Every mask kind, with packed rows (documents and a padded tail) where they apply."""
  seg = np.ones((B, T), np.int32)
  seg[:, T // 3:] = 2
  seg[:, 2 * T // 3:] = 3
  seg[-1, -T // 8:] = 0  # padding at the end of the last row
  prefix = np.linspace(1, T - 1, B).astype(np.int32)
  return {
    "causal": MaskSpec("causal"),
    "bidirectional": MaskSpec("bidirectional"),
    "prefix": MaskSpec("prefix", prefix_len_B=jnp.asarray(prefix)),
    "packed-causal": MaskSpec("causal", jnp.asarray(seg)),
    "packed-bidirectional": MaskSpec("bidirectional", jnp.asarray(seg)),
  }


def reference(q, k, v, spec: MaskSpec):
  """softmax(q k^T / sqrt(K)) v under `spec.dense`, in float32 at full matmul precision."""
  q, k, v = (x.astype(jnp.float32) for x in (q, k, v))
  with jax.default_matmul_precision("highest"):
    scores = jnp.einsum("bthk,bshk->bhts", q, k) / np.sqrt(q.shape[-1])
    scores = jnp.where(spec.dense(q.shape[1]), scores, -jnp.inf)
    return jnp.einsum("bhts,bshk->bthk", jax.nn.softmax(scores, -1), v)


def rel(got, ref) -> float:
  got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
  return float(np.linalg.norm(got - ref) / np.linalg.norm(ref))


def check(name: str, spec_name: str, spec: MaskSpec, shape, key) -> dict:
  kq, kk, kv, kc = jax.random.split(key, 4)
  q, k, v = (jax.random.normal(s, shape, jnp.float32).astype(jnp.bfloat16)
             for s in (kq, kk, kv))
  cot = jax.random.normal(kc, shape, jnp.float32)

  def loss(fn):
    return lambda q, k, v: jnp.sum(fn(q, k, v).astype(jnp.float32) * cot)

  got_fn = lambda q, k, v: kernels.attention(q, k, v, spec, kernel=name)
  ref_fn = lambda q, k, v: reference(q, k, v, spec)
  fwd = jax.jit(got_fn)
  grad = jax.jit(jax.grad(loss(got_fn), argnums=(0, 1, 2)))
  out, ref = fwd(q, k, v), ref_fn(q, k, v)
  grads = grad(q, k, v)
  ref_grads = jax.grad(loss(ref_fn), argnums=(0, 1, 2))(q, k, v)
  errors = {"out": rel(out, ref), **{f"d{n}": rel(g, r)
                                     for n, g, r in zip("qkv", grads, ref_grads)}}
  result = {"kernel": name, "mask": spec_name, "dtype": "bfloat16", "shape_BxTxHxK": list(shape),
            "rel_error": errors, "tolerance": TOLERANCE,
            "ok": all(np.isfinite(e) and e < TOLERANCE for e in errors.values())}
  if name == "cudnn":
    hlo = grad.lower(q, k, v).compile().as_text()
    result["cudnn_in_hlo"] = "cudnn" in hlo.lower()
    result["ok"] = result["ok"] and result["cudnn_in_hlo"]
  return result


def timing(name: str, spec: MaskSpec, shape, repeats: int) -> float:
  """Median milliseconds of one forward + backward (gradients of q, k, v)."""
  q, k, v = (jax.random.normal(jax.random.key(i), shape, jnp.float32).astype(jnp.bfloat16)
             for i in range(3))
  step = jax.jit(jax.grad(lambda q, k, v: jnp.sum(
    kernels.attention(q, k, v, spec, kernel=name).astype(jnp.float32)), argnums=(0, 1, 2)))
  jax.block_until_ready(step(q, k, v))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(step(q, k, v))
    times.append(time.perf_counter() - start)
  return float(np.median(times) * 1e3)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--tiny", action="store_true", help="B=2, T=64, H=2, K=16 (a smoke test)")
  parser.add_argument("--time", choices=("auto", "on", "off"), default="auto",
                      help="time each kernel at B=16, T=1024, H=12, K=64 (auto: on a GPU)")
  args = parser.parse_args(argv)
  backend = jax.default_backend()
  shape = (2, 64, 2, 16) if args.tiny else (4, 256, 4, 64)
  names = [n for n in ("cudnn", "xla") if backend in kernels.get(n).backends]
  print(json.dumps({"backend": backend, "devices": [d.device_kind for d in jax.devices()],
                    "jax_version": jax.__version__, "kernels": names,
                    "skipped": [n for n in ("cudnn", "xla") if n not in names]}), flush=True)
  failed = 0
  for i, (spec_name, spec) in enumerate(specs(shape[0], shape[1]).items()):
    for name in names:
      try:
        result = check(name, spec_name, spec, shape, jax.random.key(i))
      except Exception as e:  # noqa: BLE001 - report every kernel and mask, then fail
        result = {"kernel": name, "mask": spec_name, "ok": False,
                  "error": f"{type(e).__name__}: {e}"[:2000]}
      failed += not result["ok"]
      print(json.dumps(result), flush=True)
  if args.time == "on" or (args.time == "auto" and backend == "gpu"):
    t_shape = (4, 128, 2, 32) if args.tiny else (16, 1024, 12, 64)
    for spec_name in ("causal", "bidirectional"):
      for name in names:
        ms = timing(name, MaskSpec(spec_name), t_shape, 5 if args.tiny else 20)
        print(json.dumps({"timing": name, "mask": spec_name, "shape_BxTxHxK": list(t_shape),
                          "fwd_bwd_ms": ms}), flush=True)
  print(json.dumps({"checks_failed": failed}), flush=True)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
