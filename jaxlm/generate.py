"""Text generation: left to right with a KV cache for CLM (and prefix-LM, hybrid) models, and by
iterative unmasking for masked diffusion (`mdlm`) models.

Left to right: prompts of different lengths are left-padded into one batch; padding slots are
marked invalid in the cache, and each row's positions count only its real tokens. The prompt is
run once (prefill), then one jitted step per new token reads and extends the cache: two
compilations in all, whatever the number of tokens.

Unmasking (`unmask`): MDLM's ancestral sampler over the absorbing [MASK] state; one compiled
bidirectional forward pass per step, whatever the number of steps.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlm.errors import DataError
from jaxlm.model import LanguageModel
from jaxlm.model.cache import KVCache
from jaxlm.model.masks import MaskSpec


def sample(key: jax.Array, logits_BxV: jax.Array, temperature: float, top_k: int,
           top_p: float) -> jax.Array:
  """Greedy at temperature 0; otherwise sampling from the top-k / nucleus (top-p) set."""
  if temperature == 0.0:
    return jnp.argmax(logits_BxV, axis=-1)
  logits_BxV = logits_BxV / temperature
  if top_k > 0:
    kth_B1 = jax.lax.top_k(logits_BxV, top_k)[0][:, -1:]
    logits_BxV = jnp.where(logits_BxV < kth_B1, -jnp.inf, logits_BxV)
  if top_p < 1.0:
    sorted_BxV = jnp.sort(logits_BxV, axis=-1)[:, ::-1]
    cumulative_BxV = jnp.cumsum(jax.nn.softmax(sorted_BxV, axis=-1), axis=-1)
    # The smallest set whose probability reaches top_p: keep logits >= the last one needed.
    cutoff_B = jnp.sum(cumulative_BxV < top_p, axis=-1)
    threshold_B1 = jnp.take_along_axis(sorted_BxV, cutoff_B[:, None], axis=-1)
    logits_BxV = jnp.where(logits_BxV < threshold_B1, -jnp.inf, logits_BxV)
  return jax.random.categorical(key, logits_BxV, axis=-1)


def make_step(graphdef: nnx.GraphDef):
  """(params, cache, tokens_BxT, positions_BxT) -> (last position's logits, extended cache)."""

  @jax.jit
  def step(params, cache: KVCache, tokens_BxT, positions_BxT):
    model = nnx.merge(graphdef, params)
    h_BxTxD, cache = model.backbone(tokens_BxT, MaskSpec("causal"), positions_BxT, cache=cache)
    return model.lm_logits(h_BxTxD[:, -1]).astype(jnp.float32), cache

  return step


def generate(model: LanguageModel, prompts: list[list[int]], max_new_tokens: int, *,
             temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
             stop_id: int | None = None, vocab_in_use: int | None = None,
             step=None) -> list[list[int]]:
  """New token ids for each prompt (up to `max_new_tokens`, ending early at `stop_id`)."""
  cfg = model.backbone.cfg
  if not prompts or any(len(p) == 0 for p in prompts):
    raise DataError("generate: every prompt needs at least one token")
  if max_new_tokens < 0:
    raise DataError(f"generate: max_new_tokens={max_new_tokens}: must be >= 0")
  B, P = len(prompts), max(map(len, prompts))
  S = P + max_new_tokens
  if cfg.position == "learned" and S > cfg.max_seq_len:
    room = (f"at most {cfg.max_seq_len - P} new tokens fit after this prompt"
            if P < cfg.max_seq_len else "shorten the prompt")
    raise DataError(f"generate: prompt ({P} tokens) + max_new_tokens ({max_new_tokens}) = {S} "
                    f"exceeds the model's max_seq_len={cfg.max_seq_len}; {room}")
  tokens_BxP = np.zeros((B, P), np.int32)
  valid = np.zeros((B, S), bool)
  for i, p in enumerate(prompts):
    tokens_BxP[i, P - len(p):] = p
    valid[i, P - len(p):P] = True
  positions_BxP = np.maximum(np.cumsum(valid[:, :P], axis=1) - 1, 0).astype(np.int32)
  L, H, K = cfg.num_layers, cfg.num_heads, cfg.head_dim
  cache = dataclasses.replace(KVCache.empty(L, B, S, H, K, cfg.dtype), valid_BxS=jnp.asarray(valid))
  graphdef, params = nnx.split(model)
  step = step or make_step(graphdef)
  logits_BxV, cache = step(params, cache, jnp.asarray(tokens_BxP), jnp.asarray(positions_BxP))
  next_position_B = positions_BxP[:, -1] + 1
  key = jax.random.key(seed)
  out = np.zeros((B, max_new_tokens), np.int32)
  done = np.zeros(B, bool)
  for t in range(max_new_tokens):
    if vocab_in_use is not None:  # never sample the embedding table's padding rows
      logits_BxV = logits_BxV.at[:, vocab_in_use:].set(-jnp.inf)
    token_B = np.asarray(sample(jax.random.fold_in(key, t), logits_BxV, temperature, top_k,
                                top_p))
    out[:, t] = token_B
    done |= stop_id is not None and token_B == stop_id
    if done.all() or t == max_new_tokens - 1:
      break
    valid[:, P + t] = True
    cache = dataclasses.replace(cache, valid_BxS=jnp.asarray(valid), start=jnp.int32(P + t))
    logits_BxV, cache = step(params, cache, jnp.asarray(token_B[:, None]),
                             jnp.asarray(next_position_B[:, None] + t, jnp.int32))
  results = []
  for row in out[:, :t + 1]:
    row = list(row)
    results.append(row[:row.index(stop_id) + 1] if stop_id in row else row)
  return results


def make_denoiser(graphdef: nnx.GraphDef):
  """(params, tokens_BxT, segment_ids_BxT) -> the MLM head's float32 logits at every position,
  under bidirectional attention inside each row's real tokens (segment 0: padding)."""

  @jax.jit
  def denoise(params, tokens_BxT, segment_ids_BxT):
    model = nnx.merge(graphdef, params)
    h_BxTxD = model.hidden(tokens_BxT, MaskSpec("bidirectional", segment_ids_BxT))
    return model.mlm_logits(h_BxTxD).astype(jnp.float32)

  return denoise


def unmask(model: LanguageModel, prompts: list[list[int]], new_tokens: int, *, mask_id: int,
           steps: int | None = None, temperature: float = 1.0, top_k: int = 0,
           top_p: float = 1.0, seed: int = 0, banned: tuple[int, ...] = (),
           vocab_in_use: int | None = None) -> list[list[int]]:
  """`new_tokens` token ids after each prompt, by MDLM's ancestral sampler (Sahoo et al. 2024,
  with the absorbing [MASK] state): each row is its prompt followed by `new_tokens` [MASK]
  tokens; over `steps` steps (default `new_tokens`) from t = 1 down to 0, a position still
  masked at time t is revealed at time s = t − 1/steps with probability (t − s)/t, its token
  drawn from the model's distribution given the row as it stands (`sample`: temperature 0 is
  greedy), so every position is revealed by the last step and stays as revealed. `banned` ids
  (special tokens) and the embedding rows past `vocab_in_use` are never drawn."""
  cfg = model.backbone.cfg
  steps = new_tokens if steps is None else steps
  if not prompts or any(len(p) == 0 for p in prompts):
    raise DataError("generate: every prompt needs at least one token")
  if new_tokens < 1 or steps < 1:
    raise DataError(f"generate: max_new_tokens={new_tokens} and steps={steps} must be >= 1 for "
                    "generation by unmasking")
  B, T = len(prompts), max(map(len, prompts)) + new_tokens
  if cfg.position == "learned" and T > cfg.max_seq_len:
    raise DataError(f"generate: the longest prompt ({T - new_tokens} tokens) + max_new_tokens "
                    f"({new_tokens}) = {T} exceeds the model's max_seq_len={cfg.max_seq_len}")
  tokens_BxT = np.full((B, T), mask_id, np.int32)
  segments_BxT = np.zeros((B, T), np.int32)
  masked_BxT = np.zeros((B, T), bool)
  for i, p in enumerate(prompts):
    tokens_BxT[i, :len(p)] = p
    segments_BxT[i, :len(p) + new_tokens] = 1
    masked_BxT[i, len(p):len(p) + new_tokens] = True
  graphdef, params = nnx.split(model)
  denoise = make_denoiser(graphdef)
  key = jax.random.key(seed)
  for k in range(steps):
    t, s = 1.0 - k / steps, 1.0 - (k + 1) / steps
    logits_BxTxV = denoise(params, jnp.asarray(tokens_BxT), jnp.asarray(segments_BxT))
    V = logits_BxTxV.shape[-1]
    never_V = np.zeros(V, bool)
    never_V[[i for i in banned if i < V]] = True
    never_V[vocab_in_use or V:] = True
    logits_BxTxV = jnp.where(jnp.asarray(never_V), -jnp.inf, logits_BxTxV)
    k_draw, k_reveal = jax.random.split(jax.random.fold_in(key, k))
    drawn_BxT = np.asarray(sample(k_draw, logits_BxTxV.reshape(B * T, V), temperature, top_k,
                                  top_p)).reshape(B, T)
    reveal_BxT = masked_BxT & (np.asarray(jax.random.uniform(k_reveal, (B, T))) < (t - s) / t)
    tokens_BxT = np.where(reveal_BxT, drawn_BxT, tokens_BxT).astype(np.int32)
    masked_BxT &= ~reveal_BxT
  return [tokens_BxT[i, len(p):len(p) + new_tokens].tolist() for i, p in enumerate(prompts)]
