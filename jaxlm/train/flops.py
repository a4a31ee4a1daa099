"""Model FLOPs per token, per objective, for MFU and for FLOP-matched comparisons.

Counted as matmul FLOPs (2 per multiply-add), training = 3x forward (forward + two backward
matmuls). Attention counts what the kernel computes: a causal kernel that skips the upper
triangle does half the score/value work; XLA's dense lowering computes all of it. The MLM head
runs only on the masked positions, so its vocabulary projection counts at the mask rate, and so
does the last layer (its keys and values excepted: every position's are attended to), which runs
at those positions alone (the objective's `read_fraction`).
"""

from __future__ import annotations

import jax

from jaxlm import objectives
from jaxlm.config import Config
from jaxlm.model import kernels

# Dense bf16 peak per device, by substring of `device.device_kind` (datasheets / Cloud TPU docs).
PEAK_TFLOPS = (
  ("H100", 989.4), ("H200", 989.4), ("GH200", 989.4), ("A100", 312.0), ("L4", 121.0),
  ("TPU v6", 918.0), ("TPU v5 lite", 197.0), ("TPU v5e", 197.0), ("TPU v5", 459.0),
  ("TPU v4", 275.0),
)


def training_flops_per_token(config: Config) -> float:
  m = config.model
  D, F, L, T = m.embed_dim, m.mlp_dim, m.num_layers, config.seq_len
  block_matmuls = 4 * D * D + 2 * D * F  # q, k, v, out; mlp in and out
  kernel = kernels.get(kernels.resolve(m.attention, m.dtype))
  objective = objectives.get(config.objective)
  kind = objective.attention
  attention = 2 * T * D * (0.5 if kernel.skips_causal_half(kind, True) else 1.0)
  head = objective.head_macs_per_token(config)
  layers = L * (block_matmuls + attention)
  read = objective.read_fraction(config) if objective.read_fraction else 1.0
  if read < 1.0:  # the last layer: keys and values at every position; queries, output
    # projection, MLP and attention (dense over every key, `kernels.attention_from`) at the
    # read positions alone
    layers += 2 * D * D + read * (2 * D * D + 2 * D * F + 2 * T * D) - (block_matmuls + attention)
  forward = 2 * (layers + head)
  return 3.0 * forward


def peak_tflops_per_device(config: Config) -> float | None:
  """The configured peak, else the datasheet figure for this device; None if unknown (CPU)."""
  if config.peak_tflops > 0:
    return config.peak_tflops
  kind = jax.devices()[0].device_kind
  for name, tflops in PEAK_TFLOPS:
    if name in kind:
      return tflops
  return None
