"""`jaxlm finetune`: fine-tuning of a pre-trained run (or of a fresh backbone, the
no-pre-training baseline) on a task of the registry (GLUE, goemotions_sentiment), several seeds,
one recipe (`jaxlm.finetune.config.FinetuneConfig`).

Inputs are `[CLS] a [SEP] b [SEP]` for every model (`inputs.py`). The classifier reads [CLS]
bidirectionally for MLM and prefix-LM models and the last token causally for CLM models
(`model.Classifier`). The optimizer is pre-training's (`train.optim`: AdamW with its decay mask,
global-norm clipping, linear warmup and decay to 0) under the recipe's settings.
Outputs: WORKDIR/results.json (per-seed metrics, median, mean, std) and
WORKDIR/predictions_<split>_seed<k>.tsv, from which anyone can recompute the metrics.
"""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm
from flax import nnx
from jax.sharding import NamedSharding
from tokenizers import Tokenizer

from jaxlm import api, objectives, preflight, sharding, storage
from jaxlm.config import Config, ConfigError, DataError, MeshConfig, OptimizerConfig, apply_override
from jaxlm.eval import tasks
from jaxlm.eval.inputs import encode, padded, prediction_batches
from jaxlm.eval.tasks import metrics
from jaxlm.finetune import saved
from jaxlm.finetune.config import FinetuneConfig
from jaxlm.model import Classifier
from jaxlm.objectives.build import merge_params
from jaxlm.train.optim import make_optimizer
from jaxlm.train.state import param_and_optimizer_shardings


def _loss(logits_BxC: jax.Array, labels_B: jax.Array, weights_B: jax.Array, regression: bool):
  if regression:
    losses_B = jnp.square(logits_BxC[:, 0] - labels_B)
  else:
    losses_B = optax.softmax_cross_entropy_with_integer_labels(logits_BxC, labels_B)
  return jnp.sum(losses_B * weights_B) / jnp.maximum(jnp.sum(weights_B), 1.0)


# (graphdef, recipe, total steps, regression, mesh) -> (step, init_opt, predict), jitted
_COMPILED: dict[tuple, tuple] = {}


def _compile(graphdef, tx, regression: bool, param_sh, opt_sh) -> tuple:
  """The jitted step (donating parameters and optimizer state, returning them with the
  shardings they came with), optimizer-state initialiser and predictor."""

  def step(params, opt_state, batch, key):
    def loss_fn(p):
      logits = nnx.merge(graphdef, p)(batch["tokens"], batch["segment_ids"], key,
                                      batch["token_types"])
      return _loss(logits, batch["labels"], batch["weights"], regression)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  # Every seed's state enters and leaves the step with these shardings, so the step compiles
  # once: with the outputs' shardings left to XLA, the second call saw other input shardings
  # (and mesh-typed step counts) and compiled the step a second time.
  return (jax.jit(step, out_shardings=(param_sh, opt_sh, None), donate_argnums=(0, 1)),
          jax.jit(tx.init, out_shardings=opt_sh),
          jax.jit(lambda p, tokens, seg, types: nnx.merge(graphdef, p)(
            tokens, seg, token_types_BxT=types)))


class TaskTrainer:
  """The jitted step and predictor for one task, compiled once and reused by every seed (and
  by every trainer of the same structure, `_COMPILED`)."""

  def __init__(self, config: Config, recipe: FinetuneConfig, task, mesh: jax.sharding.Mesh,
               num_train: int):
    f = recipe
    self.config, self.recipe, self.task, self.mesh = config, recipe, task, mesh
    self.graphdef, abstract_params = nnx.split(nnx.eval_shape(lambda: self._model(0)))
    self.steps_per_epoch = max(num_train // f.batch_size, 1)
    total = self.steps_per_epoch * f.epochs
    self.tx = make_optimizer(recipe_optimizer(f, total), total)
    self.param_sh, self.opt_sh = param_and_optimizer_shardings(abstract_params, mesh, self.tx)
    self.batch_sh = NamedSharding(mesh, sharding.logical_to_spec(("batch", None)))
    self.vector_sh = NamedSharding(mesh, sharding.logical_to_spec(("batch",)))
    # Arms of one structure (a pre-trained MLM and the untrained `none`, every task of one shape
    # and recipe) share one compiled step and predictor: the key holds everything they close over.
    key = (self.graphdef, recipe, total, task.is_regression, mesh)
    if key not in _COMPILED:
      _COMPILED[key] = _compile(self.graphdef, self.tx, task.is_regression, self.param_sh,
                                self.opt_sh)
    self.step, self.init_opt, self.predict = _COMPILED[key]

  def _model(self, seed: int) -> Classifier:
    c = self.config
    objective = objectives.get(c.objective)
    readout = (objective.classifier_readout if self.recipe.readout == "objective"
               else self.recipe.readout)
    return Classifier(c.model, objective.classifier_attention, readout,
                      self.task.num_labels, self.recipe.dropout,
                      rngs=nnx.Rngs(params=seed))

  def _put(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    return {k: jax.device_put(v, self.batch_sh if v.ndim == 2 else self.vector_sh)
            for k, v in batch.items()}

  def run_seed(self, train: dict, evals: dict[str, dict], seed: int,
               pretrained: nnx.State | None, bar: tqdm.tqdm
               ) -> tuple[dict[str, np.ndarray], nnx.State]:
    """Fine-tunes one seed from `pretrained` (None: from scratch); returns dev predictions
    (logits, or scores for regression) per eval split, and the parameters. `bar` advances by
    the steps taken."""
    f = self.recipe
    params = nnx.state(self._model(seed))
    if pretrained is not None:  # the backbone by path; the head stays freshly initialised
      params = merge_params(params, pretrained, require="backbone")
    rng, key, n = np.random.default_rng(seed), jax.random.key(seed), len(train["tokens"])
    with jax.set_mesh(self.mesh):
      params = jax.device_put(params, self.param_sh)
      params = jax.tree.map(jnp.copy, params)  # own buffers: the step donates them
      opt_state = self.init_opt(params)
      for epoch in range(f.epochs):
        order = rng.permutation(n)
        for i in range(self.steps_per_epoch):
          rows = order[i * f.batch_size:(i + 1) * f.batch_size]
          batch = self._put(padded({k: v[rows] for k, v in train.items()}, f.batch_size))
          params, opt_state, _ = self.step(params, opt_state, batch, jax.random.fold_in(
            key, epoch * self.steps_per_epoch + i))
          bar.update(1)
      outputs = {}
      for split, data in evals.items():
        logits = np.zeros((len(data["tokens"]), self.task.num_labels), np.float32)
        for ids, batch in prediction_batches(data, f.eval_batch_size):
          batch = self._put(batch)
          logits[ids] = np.asarray(self.predict(params, batch["tokens"], batch["segment_ids"],
                                                batch["token_types"]))[:len(ids)]
        outputs[split] = logits[:, 0] if self.task.is_regression else logits
    return outputs, params

  def description(self, max_seq_len: int) -> dict:
    """What `saved.build` needs to rebuild the classifier."""
    model = self._model(0)
    return {"task": self.task.name, "num_labels": self.task.num_labels,
            "attention": model.attention, "readout": model.readout, "max_seq_len": max_seq_len}


def recipe_optimizer(recipe: FinetuneConfig, total_steps: int) -> OptimizerConfig:
  """The recipe as pre-training's optimizer settings: AdamW (0.9, 0.999, eps 1e-6) with the
  recipe's weight decay, clipping at global norm 1, linear warmup then linear decay to 0."""
  return OptimizerConfig(lr=recipe.lr, schedule="linear",
                         warmup_steps=int(recipe.warmup_frac * total_steps), b1=0.9, b2=0.999,
                         eps=1e-6, weight_decay=recipe.weight_decay, grad_clip=1.0,
                         end_lr_frac=0.0)


def collapsed(outputs: dict[str, np.ndarray]) -> bool:
  """Whether a classifier predicted one class for every example of every scored split."""
  return all(len(np.unique(np.argmax(logits, -1))) == 1 for logits in outputs.values())


def _summary(values: list[float]) -> dict[str, float]:
  return {"median": float(np.median(values)), "mean": float(np.mean(values)),
          "std": float(np.std(values)), "min": float(np.min(values)),
          "max": float(np.max(values))}


def run(config: Config, recipe: FinetuneConfig, task_name: str, data_dir: str | None,
        workdir: str | os.PathLike, pretrained: nnx.State | None, tok: Tokenizer,
        init: str, progress: bool = False) -> dict:
  """Fine-tunes `recipe.seeds` seeds on a fine-tuning task of the registry (`data_dir`: where a
  task that is not shipped reads its files, e.g. the GLUE TSVs); writes results.json and
  predictions TSVs. `progress`: a progress bar over every seed's steps."""
  task = tasks.get(task_name, "finetune")
  f = recipe.validate()
  workdir = storage.path(workdir)
  mesh = sharding.make_mesh(config.mesh)
  for key in ("batch_size", "eval_batch_size"):
    preflight.batch_fits(f"finetune.{key}", getattr(f, key), mesh)
  train_ex = task.read("train", data_dir, f.max_train_examples)
  if len(train_ex) < f.batch_size:
    raise ConfigError(f"config.finetune.batch_size={f.batch_size}: larger than the "
                      f"{len(train_ex)} training examples of {task.name}")
  max_len = min(f.max_seq_len, config.model.max_seq_len)
  train = {**encode(tok, train_ex, max_len), "labels": train_ex.labels}
  eval_ex = {s: task.read(s, data_dir, f.max_eval_examples) for s in task.eval_splits}
  evals = {s: encode(tok, ex, max_len) for s, ex in eval_ex.items()}
  trainer = TaskTrainer(config, f, task, mesh, len(train_ex))
  per_seed, best = [], None  # best: (rank, seed entry, parameters)
  bar = tqdm.tqdm(total=f.seeds * f.epochs * trainer.steps_per_epoch, unit="step",
                  desc=f"fine-tuning {task.name} ({f.seeds} seeds)", dynamic_ncols=True,
                  mininterval=1.0, disable=not progress or jax.process_index() != 0)
  for seed in range(f.seeds):
    outputs, params = trainer.run_seed(train, evals, config.seed + seed, pretrained, bar)
    scores = {}
    for split, preds in outputs.items():
      scores[split] = metrics.compute_metrics(task, preds, eval_ex[split].labels)
      scores[split]["score"] = metrics.glue_score(task, scores[split])
      if jax.process_index() == 0:  # every process holds all predictions; one writes them
        metrics.write_predictions(workdir / f"predictions_{split}_seed{seed}.tsv",
                                  eval_ex[split].indices, preds, eval_ex[split].labels,
                                  task=task)
    entry = {"seed": config.seed + seed, "metrics": scores}
    if not task.is_regression:  # per-example 0/1, for paired bootstraps between variants
      entry["correct"] = {split: (np.argmax(preds, -1) == eval_ex[split].labels).astype(int)
                          .tolist() for split, preds in outputs.items()}
      entry["failed"] = collapsed(outputs)
    per_seed.append(entry)
    rank = (not entry.get("failed"), scores[task.eval_splits[0]]["score"])
    if best is None or rank > best[0]:
      best = (rank, entry, params)
    del params
  # A seed that predicts one class for every example learned nothing of the task: it is kept in
  # the file, marked, and left out of the summary (unless every seed failed).
  bar.close()
  kept = [s for s in per_seed if not s.get("failed")] or per_seed
  summary = {split: {name: _summary([s["metrics"][split][name] for s in kept])
                     for name in kept[0]["metrics"][split]} for split in task.eval_splits}
  results = {"task": task.name, "init": init, "objective": config.objective,
             "train_examples": len(train_ex), "recipe": dataclasses.asdict(f),
             "seeds": per_seed, "summary": summary,
             "failed_seeds": [s["seed"] for s in per_seed if s.get("failed")],
             "classifier": {"folder": saved.FOLDER, "seed": best[1]["seed"]}}
  saved.save(workdir, best[2], config, tok, {**trainer.description(max_len),
                                             "seed": best[1]["seed"],
                                             "scores": best[1]["metrics"]})
  if jax.process_index() == 0:
    storage.write_atomic(workdir / "results.json", json.dumps(results, indent=2))
  return results


def load_init(init: str, overrides: dict[str, str]
              ) -> tuple[Config, FinetuneConfig, nnx.State, Tokenizer]:
  """Config, recipe, parameters and tokenizer of a jaxlm run or a Hugging Face BERT / GPT-2
  directory, with `overrides` applied (`finetune.*` keys to the recipe, the rest to the
  config). Fine-tuning uses every device."""
  loaded = api.load(init)
  if loaded.tokenizer is None:
    raise DataError(f"--init {init}: holds no tokenizer (tokenizer.json, vocab.txt or "
                    "vocab.json + merges.txt)")
  config = dataclasses.replace(loaded.config, mesh=MeshConfig())
  recipe = FinetuneConfig()
  for key, value in overrides.items():
    if key.startswith("finetune."):
      recipe = apply_override(recipe, key.removeprefix("finetune."), value, where="finetune.")
    else:
      config = apply_override(config, key, value)
  config.validate()
  return config, recipe.validate(), nnx.state(loaded.model), loaded.tokenizer
