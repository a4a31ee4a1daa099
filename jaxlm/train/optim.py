"""AdamW with the conventional weight-decay mask, global-norm clipping and the lr schedules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxlm.config import OptimizerConfig


def schedule(cfg: OptimizerConfig, total_steps: int) -> optax.Schedule:
  """Linear warmup, then cosine, linear, warmup-stable-decay (WSD) or constant."""
  peak, end = cfg.lr, cfg.lr * cfg.end_lr_frac
  warmup = min(cfg.warmup_steps, max(total_steps - 1, 0))
  rest = max(total_steps - warmup, 1)
  if cfg.schedule == "cosine":
    after = optax.cosine_decay_schedule(peak, rest, alpha=cfg.end_lr_frac)
  elif cfg.schedule == "linear":
    after = optax.linear_schedule(peak, end, rest)
  elif cfg.schedule == "wsd":
    decay = max(int(round(cfg.decay_frac * rest)), 1)
    after = optax.join_schedules(
      [optax.constant_schedule(peak), optax.linear_schedule(peak, end, decay)], [rest - decay])
  else:
    after = optax.constant_schedule(peak)
  if warmup == 0:
    return after
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), after], [warmup])


def decay_mask(params):
  """Decay matrices only: no decay on norms, biases or embedding tables (GPT-2, BERT practice)."""

  def decays(path, leaf) -> bool:
    names = [str(getattr(k, "key", getattr(k, "name", k))) for k in path]
    return "kernel" in names

  return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(cfg: OptimizerConfig, total_steps: int) -> optax.GradientTransformation:
  # The second moment stays float32: bf16 cannot hold the squared small gradients it averages.
  adamw = optax.adamw(schedule(cfg, total_steps), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                      weight_decay=cfg.weight_decay, mask=decay_mask,
                      mu_dtype=jnp.bfloat16 if cfg.mu_dtype == "bfloat16" else None)
  if cfg.grad_clip > 0:
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), adamw)
  return adamw
