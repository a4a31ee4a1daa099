"""A frozen-feature linear probe: what a linear classifier can read from a backbone's final
hidden states without training the backbone, against the same probe on a randomly initialised
backbone of the same shape (Conneau et al. 2018's random-encoder control).

`features` reads each example as fine-tuning does (`[CLS] a [SEP] b [SEP]`, `jaxlm.eval.inputs`)
under the objective's classifier attention, at its classifier read-out: the first token
([CLS]) for "first" (MLM: bidirectional), the last real token for "last" (CLM: causal), or the
mean of the real tokens' states for "mean". `linear_probe` standardises the features and fits a
logistic regression (Ridge for regression) with C chosen by 5-fold cross-validation on the
training split alone (`references.fit_and_score`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlm import api, objectives
from jaxlm.eval import tasks
from jaxlm.eval.inputs import encode, prediction_batches
from jaxlm.eval.references import fit_and_score
from jaxlm.eval.tasks.base import Examples
from jaxlm.model.lm import read_out
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives.build import build_model

READOUTS = ("first", "last", "mean")


# One compilation per backbone structure and read-out, shared by the random model of that shape.
@functools.lru_cache(maxsize=8)
def _forward(graphdef: nnx.GraphDef, attention: str, readout: str):
  # The weights are an argument, not closed over (closed-over arrays become program constants).
  @jax.jit
  def forward(state, tokens_BxT, segment_ids_BxT, token_types_BxT):
    return read_out(nnx.merge(graphdef, state), tokens_BxT, MaskSpec(attention, segment_ids_BxT),
                    readout, token_types_BxT=token_types_BxT).astype(jnp.float32)

  return forward


def readout_of(model, readout: str | None = None) -> tuple[str, str]:
  """(attention, readout): the objective's classifier attention, and its read-out unless
  `readout` names one of READOUTS."""
  objective = objectives.get(model.config.objective)
  readout = readout or objective.classifier_readout
  if readout not in READOUTS:
    raise ValueError(f"readout={readout!r}: allowed: {', '.join(READOUTS)}")
  return objective.classifier_attention, readout


def features(model, examples: Examples, max_len: int, batch: int, *,
             readout: str | None = None) -> np.ndarray:
  """Frozen final hidden states, float32 (N, D), of `model` (a `jaxlm.api.Pretrained`, or
  anything with `.model.backbone`, `.config` and `.tokenizer`), one row per example, read at
  the objective's classifier read-out (or `readout`: first, last, mean). Rows are encoded as
  fine-tuning encodes them, truncated to min(max_len, the model's max_seq_len), and run `batch`
  at a time, in order of length (`inputs.prediction_batches`), through one compiled forward
  pass per width (no gradients, no dropout)."""
  if model.tokenizer is None:
    raise ValueError("features: the model has no tokenizer")
  if batch < 1:
    raise ValueError(f"batch={batch}: must be positive")
  attention, readout = readout_of(model, readout)
  rows = encode(model.tokenizer, examples, min(max_len, model.config.model.max_seq_len))
  graphdef, state = nnx.split(model.model.backbone)
  forward = _forward(graphdef, attention, readout)
  out = np.zeros((len(examples), model.config.model.embed_dim), np.float32)
  for ids, part in prediction_batches(rows, batch):
    out[ids] = np.asarray(forward(state, *(jnp.asarray(part[k]) for k in (
      "tokens", "segment_ids", "token_types"))))[:len(ids)]
  return out


def linear_probe(train_features, train_labels, eval_features: dict[str, np.ndarray],
                 eval_labels: dict[str, np.ndarray], task, seed: int = 0) -> dict[str, dict]:
  """A linear classifier on standardised frozen features (scaler fitted on the training rows
  only), C chosen by 5-fold cross-validation on the training split; {split: {"score" (0-100,
  the task's score), "metrics", "correct" (per example 0/1, classification), "C" (or "alpha"),
  "train_examples"}}."""
  return fit_and_score(np.asarray(train_features, np.float64), train_labels,
                       {s: np.asarray(x, np.float64) for s, x in eval_features.items()},
                       eval_labels, task, seed, standardise=True)


def probe_pretrained_vs_random(pretrained, task, train: Examples, evals: dict[str, Examples],
                               seed: int = 0, *, max_len: int = 128, batch: int = 64,
                               readout: str | None = None) -> dict:
  """The probe on `pretrained`'s backbone and on a randomly initialised model of the same
  config (`build_model(config, seed)`), the same rows, read-out and cross-validation seed:
  {"pretrained": {split: result}, "random": {split: result}, "difference": {split: pretrained
  minus random score}, "attention", "readout", "random_init_seed", "max_len"}, each result as
  `linear_probe` gives it."""
  task = tasks.get(task, "finetune")
  attention, readout = readout_of(pretrained, readout)
  # Through `from_params`, as the pretrained model was made: the same placement, so the two
  # share one compiled forward pass per width.
  random = api.from_params(pretrained.config, nnx.state(build_model(pretrained.config, seed)),
                           pretrained.tokenizer)
  labels = {split: ex.labels for split, ex in evals.items()}
  results = {}
  for name, model in (("pretrained", pretrained), ("random", random)):
    x_train = features(model, train, max_len, batch, readout=readout)
    x_evals = {split: features(model, ex, max_len, batch, readout=readout)
               for split, ex in evals.items()}
    results[name] = linear_probe(x_train, train.labels, x_evals, labels, task, seed)
  results["difference"] = {split: results["pretrained"][split]["score"]
                           - results["random"][split]["score"] for split in evals}
  return {**results, "attention": attention, "readout": readout, "random_init_seed": seed,
          "max_len": min(max_len, pretrained.config.model.max_seq_len)}
