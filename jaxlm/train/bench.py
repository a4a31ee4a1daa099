"""Training-step throughput on synthetic data: `jaxlm bench --config CONFIG [--steps N]`.

The state, optimizer, shardings and jitted step are built exactly as `jaxlm train` builds them;
only the data differs: random token ids (never the special ids 0-4), one document per row,
generated on the device before timing, so the number measured is the step and nothing else.
Timing follows the training loop's discipline: no host sync between steps, one
`jax.block_until_ready` after the last one.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxlm import objectives, preflight, sharding
from jaxlm.config import Config, replace_at
from jaxlm.data.packing import Batch
from jaxlm.data.special_tokens import FIRST_ORDINARY_ID, SpecialTokens, trained_layout
from jaxlm.objectives.build import count_params
from jaxlm.train.flops import peak_tflops_per_device, training_flops_per_token
from jaxlm.train.trainer import build_trainer

NUM_BATCHES = 4  # distinct batches cycled through, so no step sees exactly its predecessor's data


def with_synthetic_tokenizer(config: Config) -> tuple[Config, SpecialTokens]:
  """The config and special-token layout of a run whose tokenizer has data.vocab_size tokens,
  for benchmarks that need no data."""
  config = replace_at(config, "model.vocab_size", config.embedding_rows(config.data.vocab_size))
  return config, trained_layout(config.data.vocab_size)


def synthetic_batches(config: Config, batch_sh: jax.sharding.NamedSharding,
                      count: int = NUM_BATCHES) -> list[Batch]:
  """`count` batches of random ordinary tokens, created sharded on the devices; sentence-pair
  objectives also get token types (the second half of each row is sentence B) and labels."""
  B, T, V = config.batch_size, config.seq_len, config.data.vocab_size
  pairs = objectives.get(config.objective).rows == "sentence_pairs"

  def make(key: jax.Array) -> Batch:
    tokens_BxT = jax.random.randint(key, (B, T), FIRST_ORDINARY_ID, V, dtype=jnp.int32)
    batch = Batch(tokens=tokens_BxT, segment_ids=jnp.ones((B, T), jnp.int32),
                  positions=jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32), (B, T)))
    if pairs:
      batch.update(token_types=jnp.broadcast_to((jnp.arange(T) >= T // 2).astype(jnp.int32),
                                                (B, T)),
                   nsp_labels=jax.random.bernoulli(key, 0.5, (B,)).astype(jnp.int32))
    return batch

  make = jax.jit(make, out_shardings=batch_sh)
  return [make(jax.random.key(i)) for i in range(count)]


def _peak_memory_gb() -> float | None:
  stats = jax.local_devices()[0].memory_stats()  # None on CPU
  if not stats or "peak_bytes_in_use" not in stats:
    return None
  return stats["peak_bytes_in_use"] / 1e9


def bench(config: Config, steps: int = 20, warmup: int = 3, *, name: str = "") -> dict:
  """Times `steps` training steps after `warmup` (the first of which compiles).

  Returns one JSON-able dict: what ran where (config name, device, versions, shape), the step
  time, tokens/s, model TFLOP/s per device, MFU (None where the device's peak is unknown, e.g.
  CPU), peak device memory (None where the backend does not report it) and compile time.
  """
  if steps < 1 or warmup < 1:
    raise ValueError(f"bench: steps={steps} and warmup={warmup} must both be >= 1 "
                     "(the first warmup step compiles)")
  config, special = with_synthetic_tokenizer(config.validate())
  mesh = sharding.make_mesh(config.mesh)
  preflight.mesh_fit(config, mesh)
  trainer = build_trainer(config, mesh, special)
  state, batch_sh, train_step = trainer.state, trainer.batch_sh, trainer.train_step

  with jax.set_mesh(mesh):
    batches = synthetic_batches(config, batch_sh)
    jax.block_until_ready((state, batches))
    # The first call traces, compiles and dispatches; the run itself is asynchronous.
    start = time.perf_counter()
    state, metrics = train_step(state, batches[0])
    compile_s = time.perf_counter() - start
    jax.block_until_ready((state, metrics))
    first_step_s = time.perf_counter() - start
    for i in range(1, warmup):
      state, metrics = train_step(state, batches[i % len(batches)])
    jax.block_until_ready((state, metrics))

    start = time.perf_counter()
    for i in range(steps):
      state, metrics = train_step(state, batches[(warmup + i) % len(batches)])
    jax.block_until_ready((state, metrics))
    seconds = time.perf_counter() - start

  tokens_per_step = config.batch_size * config.seq_len
  tokens_per_s = steps * tokens_per_step / seconds
  flops_per_token = training_flops_per_token(config)
  tflops = tokens_per_s * flops_per_token / 1e12 / jax.device_count()
  peak = peak_tflops_per_device(config)
  cache_size = getattr(train_step, "_cache_size", None)  # private jax API: may disappear
  device = jax.devices()[0]
  return {
    "config": name,
    "device_kind": device.device_kind,
    "backend": jax.default_backend(),
    "jax_version": jax.__version__,
    "device_count": jax.device_count(),
    "mesh": dict(mesh.shape),
    "objective": config.objective,
    "batch": config.batch_size,
    "seq": config.seq_len,
    "params": count_params(state.params),
    "dtype": config.model.dtype,
    "steps": steps,
    "warmup": warmup,
    "step_ms": seconds / steps * 1e3,
    "tokens_per_s": tokens_per_s,
    "flops_per_token": flops_per_token,
    "tflops_per_s": tflops,  # per device
    "peak_tflops": peak,
    "mfu": tflops / peak if peak else None,
    "peak_memory_gb": _peak_memory_gb(),
    "compile_s": compile_s,  # trace + lower + compile of the step
    "first_step_s": first_step_s,  # compile_s plus running the first step
    "step_compilations": cache_size() if cache_size else None,
    "final_loss": float(np.asarray(metrics["loss"])),
  }
