"""The runs a study is made of, each opened once.

Both studies are the same three stages over a list of arms: pre-train every arm on the same
data with one shared tokenizer (`pretrain`), score each zero-shot (`zero_shot`), fine-tune each
and the untrained baselines (`finetune`). compare's arms are its variants; scale's are its
variants at each grid point. A `Run` holds what a stage needs from a finished pre-training
run: its resolved config, its parameters (restored once), its curve (the log read once) and
its held-out quality (computed once, on data loaded once per study). Every stage resumes:
finished runs are not retrained, and zero-shot and fine-tuning results are cached by their
options and recipe.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import jax
import numpy as np
import tqdm
from etils import epath
from flax import nnx
from tokenizers import Tokenizer

from jaxlm import api, objectives, preflight, sharding, stats, storage
from jaxlm.config import Config, ConfigError, replace_at
from jaxlm.data import pipeline, tokenizer
from jaxlm.eval import mlm_baseline, probe, references, tasks
from jaxlm.finetune import trainer
from jaxlm.studies import variants
from jaxlm.studies.config import StudyConfig
from jaxlm.studies.results import Curve, HeldoutQuality
from jaxlm.train.checkpoint import restore_params
from jaxlm.train.evaluate import bytes_per_token, evaluate
from jaxlm.train.loop import train
from jaxlm.train.step import eval_step_for


def check(config: StudyConfig) -> str | None:
  """Everything a study can refuse before it trains: values, variants, tasks and their
  options, the pre-training config, and where tasks that do not ship read their files.
  Returns that directory (None when no task needs one)."""
  config.validate()
  for name in config.objectives:
    preflight.pretrain_config(variants.pretrain_config(config.pretrain, name))
  for name in config.tasks:
    tasks.get(name, "finetune")
  for name in config.zero_shot:
    tasks.get(name, "zero_shot").check(config.zero_shot_sample)
  return task_data_dir(config.tasks, config.glue_dir)


def in_domain_source(task_name: str, data_dir: str | None, folder: epath.Path) -> str:
  """A `text:` source of the fine-tuning task's training texts (every training example, pair
  tasks' two texts joined by a blank line; one file per example, so the held-out split takes
  whole examples), written once into `folder`; validation and test texts are never included."""
  task = tasks.get(task_name, "finetune")
  train = task.read("train", data_dir)
  done = folder / "DONE"
  if not done.exists():
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(train.texts_a):
      second = f"\n\n{train.texts_b[i]}" if train.texts_b is not None else ""
      (folder / f"{task.name}-{i:07d}.txt").write_text(text + second, encoding="utf-8")
    done.write_text(f"{len(train)} training examples of {task.name}\n")
  return f"text:{folder}"


def task_data_dir(task_names, glue_dir: str) -> str | None:
  """Where tasks that do not ship read their files: `glue_dir`, else $GLUE_DIR. A task that
  needs them and has none is a one-line error before anything trains."""
  data_dir = glue_dir or os.environ.get("GLUE_DIR", "")
  if data_dir and not data_dir.startswith("tfds:") and not storage.path(data_dir).is_dir():
    raise ConfigError(f"config.glue_dir={data_dir!r}: no such directory")
  needing = [t for t in task_names if tasks.get(t).needs_data_dir]
  if needing and not data_dir:
    raise ConfigError(f"config.tasks={','.join(task_names)!r}: {', '.join(needing)} need GLUE "
                      "data; set --config.glue_dir or $GLUE_DIR, or use the shipped "
                      "goemotions_sentiment")
  return data_dir or None


@dataclasses.dataclass(frozen=True)
class Arm:
  """One pre-training run a study asks for: `name` in its results, `variant` (its objective
  and options), its config and its directory."""

  name: str
  variant: str
  config: Config
  run_dir: epath.Path


@dataclasses.dataclass(frozen=True, eq=False)
class Run:
  """A finished pre-training run, opened once."""

  arm: Arm
  config: Config  # resolved: the embedding table fitted to the tokenizer
  params: nnx.State  # the newest checkpoint's, on the config's mesh
  tokenizer: Tokenizer
  curve: Curve
  heldout: HeldoutQuality
  data: DataCache  # the study's data, shared by its runs

  @property
  def name(self) -> str:
    return self.arm.name

  def model(self) -> api.Pretrained:
    """The run for scoring, on one device, from the parameters already restored."""
    return api.from_params(self.config, self.params, self.tokenizer)


class DataCache:
  """Each row layout's data, loaded once per study (every arm shares source and tokenizer)."""

  def __init__(self, tok: Tokenizer):
    self.tok, self.loaded = tok, {}

  def get(self, config: Config, layout: str | None = None) -> pipeline.Data:
    layout = layout or objectives.get(config.objective).rows
    key = (layout, json.dumps(dataclasses.asdict(config.data), sort_keys=True), config.seq_len,
           config.seed)
    if key not in self.loaded:
      self.loaded[key] = pipeline.load(config, lambda _: self.tok, layout)
    return self.loaded[key]


def pretrain(arms: list[Arm], study: str, *, quiet: bool = False) -> list[Run]:
  """Trains (or resumes, or finds finished) every arm in order; the first arm's tokenizer is
  shared by file with the rest."""
  runs, shared, cache = [], None, None
  for arm in arms:
    config = arm.config
    if shared is not None:
      config = replace_at(config, "data.tokenizer", str(shared))
    print(f"jaxlm {study}: pre-training {arm.name} ({config.steps} steps) in {arm.run_dir}")
    config = train(config, arm.run_dir, quiet=quiet)["config"]
    shared = shared or arm.run_dir / "tokenizer.json"
    if cache is None:
      cache = DataCache(tokenizer.load_file(shared))
    _, params = restore_params(arm.run_dir, sharding.make_mesh(config.mesh))
    runs.append(Run(arm, config, params, cache.tok, Curve.read(arm.run_dir),
                    _final_heldout(config, params, cache, arm.run_dir), cache))
  return runs


def _final_heldout(config: Config, params: nnx.State, cache: DataCache,
                   run_dir: epath.Path) -> HeldoutQuality:
  """`heldout_quality` of a finished run (every held-out row), cached in RUN/heldout.json, so a
  study that opens the run again (rerun, resumed, or another study in the same workdir) does
  not measure it again; redone when the run's steps, data or batch change. Several processes
  always measure (together: each must take part in the sharded evaluation)."""
  file = run_dir / "heldout.json"
  options = {"steps": config.steps, "data": dataclasses.asdict(config.data),
             "seq_len": config.seq_len, "batch_size": config.batch_size, "version": 1}
  single_process = jax.process_count() == 1
  found = _cached(file, options) if single_process else None
  if found:
    return HeldoutQuality.from_json(found["heldout"])
  quality = heldout_quality(config, params, cache.get(config), cache.tok, run_dir)
  if single_process:
    storage.write_atomic(file, json.dumps({"options": options, "heldout": quality.to_json()}))
  return quality


def _cached(file: epath.Path, options: dict) -> dict | None:
  """A cached measurement (JSON with its "options"), or None when there is none or it was made
  with other options."""
  found = json.loads(file.read_text()) if file.exists() else None
  return found if found and found.get("options") == options else None


# What a held-out bits-per-byte figure is, by the objective's likelihood (`Objective.likelihood`).
BPB_KINDS = {
  "exact": "exact",  # CLM: next-token log-loss; prefix-LM: the continuations' (a sequence NLL)
  "bound": "bound",  # MDLM: the negative ELBO, an upper bound on the NLL
  "none": "masked-token",  # a masked-token cross-entropy at the mask rate: no sequence likelihood
}


def bpb_kind(objective) -> str:
  return BPB_KINDS[objective.likelihood]


def heldout_quality(config: Config, params: nnx.State, data: pipeline.Data, tok: Tokenizer,
                    where: epath.Path) -> HeldoutQuality:
  """Held-out metrics over every held-out row, beside the two context-free baselines of
  `mlm_baseline`; bits per byte (the loss in nats / ln 2 / the held-out text's mean UTF-8
  bytes per token) for every objective, with its kind (`BPB_KINDS`: exact, bound or
  masked-token); perplexity where the objective is a likelihood."""
  special = tokenizer.special_tokens(tok)
  mesh = sharding.make_mesh(config.mesh)
  eval_step = eval_step_for(config, special)  # the training loop's: compiled once per run
  rows = data.heldout
  if len(rows) < config.batch_size:
    raise ConfigError(f"{where}: fewer held-out rows ({len(rows)}) than one batch "
                      f"({config.batch_size}); raise data.heldout_frac")
  num_batches = len(rows) // config.batch_size
  with jax.set_mesh(mesh):
    metrics = evaluate(eval_step, params, rows, config, sharding.batch_sharding(mesh),
                       num_batches=num_batches)
  objective = objectives.get(config.objective)
  extra = {}
  if objective.nsp:  # `loss` is the masked-token part, comparable with plain MLM's
    extra = {"loss_with_nsp": metrics["loss"], "nsp_loss": metrics["nsp_loss"],
             "nsp_accuracy": metrics["nsp_accuracy"],
             "nsp_accuracy_halfwidth": stats.binomial_halfwidth(
               metrics["nsp_accuracy"], num_batches * config.batch_size)}
    metrics["loss"] = metrics["mlm_loss"]
  # Bits per byte for every objective, labelled for what it is (BPB_KINDS).
  bits_per_byte = metrics["loss"] / math.log(2) / bytes_per_token(data)
  extra["bits_per_byte_kind"] = bpb_kind(objective)
  if "perplexity_bound" in metrics:
    extra["perplexity_bound"] = metrics["perplexity_bound"]
  predicted = max(int(metrics.get("predicted_tokens", 1)), 1)
  return HeldoutQuality(
    loss=metrics["loss"], accuracy=metrics["accuracy"],
    accuracy_halfwidth=stats.binomial_halfwidth(min(max(metrics["accuracy"], 0.0), 1.0),
                                                predicted),
    predicted_tokens=int(metrics.get("predicted_tokens", 0)),
    unigram_baseline=mlm_baseline.unigram_accuracy(data.train, rows, special.special_ids),
    row_mode_baseline=mlm_baseline.row_mode_accuracy(rows, special.special_ids),
    perplexity=metrics.get("perplexity"), bits_per_byte=bits_per_byte, extra=extra)


def train_ids(run: Run) -> np.ndarray:
  """Every token id of the packed training rows (special tokens dropped): the text the
  zero-shot references are fitted on."""
  return pipeline.training_token_ids(run.data.get(run.config, "packed"), run.tokenizer)


def zero_shot(runs: list[Run], names: tuple[str, ...], sample: int, study: str, *,
              quiet: bool = False
              ) -> dict[str, dict[str, dict]]:
  """{task: {run name: result}} for every zero-shot task and run, each cached in its run
  directory as TASK.json (redone when the options change). One process scores."""
  if not names or not runs:
    return {}
  if jax.process_count() > 1:
    print(f"jaxlm {study}: zero-shot tasks run on one process; skipped here (run "
          "`jaxlm eval --workdir RUN --task NAME` per run)")
    return {}
  ids = None
  out: dict[str, dict[str, dict]] = {}
  for name in names:
    task = tasks.get(name, "zero_shot")
    # A task's `version` changes when what it computes does, so older caches are redone.
    options = {"sample": sample, "version": getattr(task, "version", 1)}
    for run in runs:
      file = run.arm.run_dir / f"{name}.json"
      if file.exists():
        cached = json.loads(file.read_text())
        if cached.get("options") == options:
          out.setdefault(name, {})[run.name] = cached
          continue
      print(f"jaxlm {study}: {name} zero-shot for {run.name}")
      ids = train_ids(runs[0]) if ids is None else ids
      start = time.perf_counter()
      result = task.evaluate(run.model(), sample=sample, train_ids=ids, progress=not quiet)
      result |= {"seconds": time.perf_counter() - start, "options": options}
      storage.write_atomic(file, json.dumps(result))
      out.setdefault(name, {})[run.name] = result
  return out


@dataclasses.dataclass(frozen=True)
class FinetuneArm:
  """What one fine-tuning arm starts from: a run's backbone, or a fresh one (`run` None) of
  `config`'s shape and attention."""

  name: str
  config: Config
  run: Run | None
  out: epath.Path  # results go to out/TASK/


def finetune(arms: list[FinetuneArm], config: StudyConfig, data_dir: str | None,
             tok: Tokenizer, study: str, *, quiet: bool = False) -> dict[str, dict[str, dict]]:
  """{arm name: {task: results.json}}; results of the same recipe are read, not redone."""
  recipe = dataclasses.asdict(config.finetune)
  out: dict[str, dict[str, dict]] = {}
  for arm in arms:
    for task in config.tasks:
      folder = arm.out / task
      if (folder / "results.json").exists():
        cached = json.loads((folder / "results.json").read_text())
        if cached.get("recipe") == recipe:
          out.setdefault(arm.name, {})[task] = cached
          continue
      print(f"jaxlm {study}: fine-tuning {arm.name} on {task}")
      start = time.perf_counter()
      result = trainer.run(
        arm.config, config.finetune, task, data_dir, folder,
        arm.run.params if arm.run else None, tok,
        init=str(arm.run.arm.run_dir) if arm.run else "none", progress=not quiet)
      result["seconds"] = time.perf_counter() - start
      out.setdefault(arm.name, {})[task] = result
  return out


def finetune_references(runs: list[Run], config: StudyConfig, data_dir: str | None,
                        out: epath.Path, study: str, *, quiet: bool = False
                        ) -> dict[str, dict]:
  """{task: {"bag_of_words": {"words"|"pieces": {split: result}}, "probe": {run name: ...}}}:
  what the fine-tuned arms are measured against, on exactly their training examples. Bag of
  words on words and on the runs' own pieces (`eval/references.py`); for each run, a linear
  probe of its frozen features beside the same probe of a randomly initialised model of its
  shape (`eval/probe.py`). Cached, and redone when the examples change: the bag of words in
  out/TASK.json, each run's probe in RUN/probe_TASK.json, so a variant added to a finished
  study probes that variant alone. A progress bar counts the fits (`quiet`: none). One
  process computes them."""
  if not config.tasks or not runs or jax.process_count() > 1:
    return {}
  f = config.finetune
  options = {"max_train_examples": f.max_train_examples, "max_eval_examples": f.max_eval_examples,
             "max_seq_len": f.max_seq_len, "seed": config.pretrain.seed, "version": 2}
  found = {}
  for name in config.tasks:
    task = tasks.get(name, "finetune")
    if task.is_regression:
      continue
    bag = _cached(out / f"{name}.json", options)
    probes = {r.name: _cached(r.arm.run_dir / f"probe_{name}.json", options) for r in runs}
    todo = [r for r in runs if probes[r.name] is None]
    if bag is None or todo:
      print(f"jaxlm {study}: same-data references for {name}")
      train = task.read("train", data_dir, f.max_train_examples)
      evals = {s: task.read(s, data_dir, f.max_eval_examples) for s in task.eval_splits}
      with tqdm.tqdm(total=(bag is None) + len(todo), desc=f"references for {name}",
                     unit="fit", dynamic_ncols=True, disable=quiet) as bar:
        if bag is None:
          start = time.perf_counter()
          fitted = references.bag_of_words(task, train, evals, tokenizer=runs[0].tokenizer,
                                           seed=options["seed"])
          bag = {"bag_of_words": fitted, "train_examples": len(train), "options": options,
                 "seconds": time.perf_counter() - start}
          storage.write_atomic(out / f"{name}.json", json.dumps(bag))
          bar.update()
        for r in todo:  # the run's frozen features and a random model's, each probed
          start = time.perf_counter()
          probed = probe.probe_pretrained_vs_random(r.model(), task, train, evals,
                                                    options["seed"], max_len=f.max_seq_len,
                                                    batch=f.eval_batch_size)
          probes[r.name] = {"probe": probed, "options": options,
                            "seconds": time.perf_counter() - start}
          storage.write_atomic(r.arm.run_dir / f"probe_{name}.json", json.dumps(probes[r.name]))
          bar.update()
    found[name] = {**bag, "probe": {n: p["probe"] for n, p in probes.items()}}
  return found


def write_json(file: epath.Path, summary: dict[str, Any]) -> None:
  if is_writer():
    storage.write_atomic(file, json.dumps(summary, indent=1))


def is_writer() -> bool:
  """Whether this process writes a study's shared files (process 0)."""
  return jax.process_index() == 0
