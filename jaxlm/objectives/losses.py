"""Cross-entropy as sums (loss, correct, count), whole or in rematerialised chunks, and the
metrics every objective reports from them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def next_token_targets(tokens_BxT: jax.Array, seg_BxT: jax.Array):
  """CLM and prefix-LM targets: position t predicts token t+1 of the same document.
  Returns (targets_BxT, weights_BxT)."""
  targets_BxT = jnp.roll(tokens_BxT, -1, axis=1)
  weights_BxT = (jnp.roll(seg_BxT, -1, axis=1) == seg_BxT) & (seg_BxT > 0)
  return targets_BxT, weights_BxT.at[:, -1].set(False)


def _cross_entropy_sums(logits_BxNxV: jax.Array, targets_BxN: jax.Array, weights_BxN: jax.Array,
                        loss_weights_BxN: jax.Array):
  logits_BxNxV = logits_BxNxV.astype(jnp.float32)
  losses_BxN = optax.softmax_cross_entropy_with_integer_labels(logits_BxNxV, targets_BxN)
  weights_BxN = weights_BxN.astype(jnp.float32)
  # Correct where the target's logit is the largest (a tie counts). The same as argmax ==
  # target but for ties, and a plain max: XLA:CPU runs argmax's (value, index) reduction about
  # 4x slower, a tenth of the main job's CPU step (benchmarks/README.md).
  logits_BxNxV = jax.lax.stop_gradient(logits_BxNxV)
  target_logit_BxN = jnp.take_along_axis(logits_BxNxV, targets_BxN[..., None], axis=-1)[..., 0]
  correct_BxN = (target_logit_BxN >= jnp.max(logits_BxNxV, axis=-1)).astype(jnp.float32)
  return {
    "loss_sum": jnp.sum(losses_BxN * loss_weights_BxN.astype(jnp.float32)),
    "correct_sum": jnp.sum(correct_BxN * weights_BxN),
    "count": jnp.sum(weights_BxN),
  }


def loss_sums(logits_fn, h_BxNxD: jax.Array, targets_BxN: jax.Array, weights_BxN: jax.Array,
              chunk: int, loss_weights_BxN: jax.Array | None = None) -> dict[str, jax.Array]:
  """`_cross_entropy_sums(logits_fn(h))`, or, with `chunk`, the same sums over N in chunks of
  `chunk` positions: a scan whose body is rematerialised, so each chunk's B x chunk x V logits
  are made, reduced and dropped, and remade in the backward pass.

  `weights_BxN` count the predicted tokens (`count`, `correct_sum`); `loss_weights_BxN`, when
  given, weight the cross-entropy instead of them (MDLM's 1/t per row)."""
  if loss_weights_BxN is None:
    loss_weights_BxN = weights_BxN
  N = h_BxNxD.shape[1]
  if not chunk or chunk >= N:
    return _cross_entropy_sums(logits_fn(h_BxNxD), targets_BxN, weights_BxN, loss_weights_BxN)
  pad = -N % chunk  # padded positions carry weight 0
  h_BxNxD = jnp.pad(h_BxNxD, ((0, 0), (0, pad), (0, 0)))
  targets_BxN, weights_BxN, loss_weights_BxN = (
    jnp.pad(x, ((0, 0), (0, pad))) for x in (targets_BxN, weights_BxN, loss_weights_BxN))

  def chunks(x):  # B x N x ... -> C x B x chunk x ...
    return jnp.moveaxis(x.reshape(x.shape[0], -1, chunk, *x.shape[2:]), 1, 0)

  @jax.checkpoint
  def add_chunk(total, chunk_xs):
    sums = _cross_entropy_sums(logits_fn(chunk_xs[0]), *chunk_xs[1:])
    return jax.tree.map(jnp.add, total, sums), None

  zeros = {k: jnp.zeros((), jnp.float32) for k in ("loss_sum", "correct_sum", "count")}
  total, _ = jax.lax.scan(add_chunk, zeros, tuple(
    chunks(x) for x in (h_BxNxD, targets_BxN, weights_BxN, loss_weights_BxN)))
  return total


def summarize(sums: dict[str, jax.Array], reports_perplexity: bool,
              likelihood: str = "none") -> dict[str, jax.Array]:
  """Loss, accuracy and predicted tokens from summed counts (+ perplexity for next-token losses,
  perplexity_bound for losses that bound the negative log-likelihood). Where the loss is
  averaged over more tokens than are predicted (MDLM: over every real token), `accuracy_count`
  holds the predicted ones, which accuracy and predicted_tokens then count."""
  count = jnp.maximum(sums["count"], 1.0)
  loss = sums["loss_sum"] / count
  predicted = sums.get("accuracy_count", sums["count"])
  metrics = {"loss": loss, "accuracy": sums["correct_sum"] / jnp.maximum(predicted, 1.0),
             "predicted_tokens": predicted}
  if reports_perplexity:
    metrics["perplexity"] = jnp.exp(loss)
  if likelihood == "bound":
    metrics["perplexity_bound"] = jnp.exp(loss)
  if "nsp_count" in sums:  # MLM + NSP: `loss` is their sum; each part on its own
    nsp_count = jnp.maximum(sums["nsp_count"], 1.0)
    metrics.update(mlm_loss=sums["mlm_loss_sum"] / count, nsp_loss=sums["nsp_loss_sum"] / nsp_count,
                   nsp_accuracy=sums["nsp_correct_sum"] / nsp_count)
  return metrics

