"""The learning curve by tokens seen: at each token milestone a run kept, held-out quality, each
zero-shot task on a fixed subset with its references, and the frozen-feature probe."""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

import jax
import tqdm

from jaxlm import api, sharding, storage
from jaxlm.eval import probe, tasks
from jaxlm.studies.config import StudyConfig
from jaxlm.studies.runs import Run, heldout_quality, train_ids
from jaxlm.train.checkpoint import restore_params


@dataclasses.dataclass(frozen=True)
class ProbeData:
  """What the learning curve probes each checkpoint on: a classification task's training
  examples and its headline split, exactly as `finetune_references` reads them."""

  task: Any
  train: Any  # Examples
  split: str
  evaluate: Any  # Examples of `split`
  max_len: int
  batch: int
  seed: int  # the cross-validation's (and the random-init model's): the study's first seed

  @classmethod
  def first_of(cls, config: StudyConfig, data_dir: str | None) -> ProbeData | None:
    """The first classification task of `config.tasks` at its last eval split (test where
    the task has one), or None when there is none."""
    f = config.finetune
    for name in config.tasks:
      task = tasks.get(name, "finetune")
      if not task.is_regression:
        split = task.eval_splits[-1]
        return cls(task, task.read("train", data_dir, f.max_train_examples), split,
                   task.read(split, data_dir, f.max_eval_examples), f.max_seq_len,
                   f.eval_batch_size, config.pretrain.seed)
    return None

  def from_references(self, references: dict[str, dict], run: str) -> dict | None:
    """The same probe of run `run`'s final model, as `finetune_references` computed it for
    every split (same examples, features and cross-validation seed), or None."""
    found = references.get(self.task.name, {}).get("probe", {}).get(run)
    if found is None or self.split not in found["pretrained"]:
      return None
    return {"task": self.task.name, "split": self.split,
            "score": found["pretrained"][self.split]["score"]}

  def score(self, model: api.Pretrained, seed: int) -> dict:
    """The frozen-feature probe of `model` on this split: {"task", "split", "score"}."""
    x_train = probe.features(model, self.train, self.max_len, self.batch)
    x_eval = probe.features(model, self.evaluate, self.max_len, self.batch)
    result = probe.linear_probe(x_train, self.train.labels, {self.split: x_eval},
                                {self.split: self.evaluate.labels}, self.task, seed)[self.split]
    return {"task": self.task.name, "split": self.split, "score": result["score"]}


def _zero_shot(name: str, model, sample: int, ids, scored: dict | None,
               scored_sample: int) -> dict:
  """A curve point's zero-shot entry: the subset of the run's own scores when it has them (the
  final model), else scored here against the references fitted on `ids()`."""
  task = tasks.get(name, "zero_shot")
  subset = getattr(task, "subset", None)  # optional (tasks/base.py)
  found = scored and subset and subset(scored, scored_sample, sample)
  if found:
    return found
  result = task.evaluate(model, sample=sample, train_ids=ids())
  return {"overall": result["overall"], "interval": result["interval"],
          "items": result["items"],
          "references": {ref: r["overall"] for ref, r in result["references"].items()}}


def learning_curve(runs: list[Run], names: tuple[str, ...], sample: int, study: str,
                   probe_on: ProbeData | None = None, references: dict | None = None,
                   scored: dict | None = None, scored_sample: int = 0, *,
                   quiet: bool = False) -> dict[str, list[dict]]:
  """{run name: points}: at each token milestone the run kept (`checkpoint_tokens`) and at its
  end, held-out quality, each zero-shot task on `sample` items per group with the task's
  references (fitted on the run's whole training text) and, with `probe_on`, the frozen-feature
  linear probe of that checkpoint (`eval/probe.py`; at the end taken from `references`, the
  `finetune_references` that probed the final model already; the end's held-out quality is
  the run's own, measured when it was opened, and its zero-shot scores the subset of `scored`,
  the study's scores of each run at `scored_sample` items per group). Cached in
  RUN/learning_curve.json, redone when the options change. One process measures."""
  if not sample or jax.process_count() > 1:
    return {}
  ids = None
  out = {}
  for run in runs:
    steps = run.config.milestone_steps()
    if not steps:
      continue
    steps = sorted(set(steps) | {run.config.steps})
    file = run.arm.run_dir / "learning_curve.json"
    options = {"steps": steps, "tasks": list(names), "sample": sample, "version": 3,
               "probe": probe_on and {"task": probe_on.task.name, "split": probe_on.split,
                                      "train": len(probe_on.train), "max_len": probe_on.max_len}}
    if file.exists() and json.loads(file.read_text()).get("options") == options:
      out[run.name] = json.loads(file.read_text())["points"]
      continue
    print(f"jaxlm {study}: learning curve of {run.name} at steps {steps}")
    # The training text's token ids (every run's): read once, when a point needs them.
    ids = ids or functools.cache(lambda run=run: train_ids(run))
    mesh = sharding.make_mesh(run.config.mesh)
    points = []
    for step in tqdm.tqdm(steps, desc=f"learning curve of {run.name}", unit="checkpoint",
                          dynamic_ncols=True, disable=quiet):
      final = step == run.config.steps
      params = run.params if final else restore_params(run.arm.run_dir, mesh, step)[1]
      model = api.from_params(run.config, params, run.tokenizer)
      zero = {name: _zero_shot(name, model, sample, ids,
                               (scored or {}).get(name, {}).get(run.name) if final else None,
                               scored_sample) for name in names}
      heldout = run.heldout if final else heldout_quality(
        run.config, params, run.data.get(run.config), run.tokenizer, run.arm.run_dir)
      point = {"step": step, "tokens": int(step * run.curve.tokens_per_step),
               "heldout": heldout.to_json(), "zero_shot": zero}
      if probe_on is not None:
        found = probe_on.from_references(references or {}, run.name) if final else None
        point["probe"] = found or probe_on.score(model, probe_on.seed)  # as the references
      points.append(point)
    storage.write_atomic(file, json.dumps({"options": options, "points": points}))
    out[run.name] = points
  return out
