"""`jaxlm compare`: pre-train variants that differ only in objective, fine-tune each (and a
no-pre-training baseline) on GLUE with one recipe and several seeds, and report.

Fairness is by construction: every variant is the same `pretrain` config with only `objective`
changed, so data order, tokenizer (trained once, then shared by file), model shape, steps and
learning-rate schedule are identical; MLM masking happens on the device from the same seed.
Outputs in WORKDIR: pretrain/<objective>/ (runs), finetune/<variant>/<task>/ (results),
report.md, report.json and PNG plots. Rerunning resumes: finished runs are not redone.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from pathlib import Path

import jax
from etils import epath

from jaxlm import sharding, storage
from jaxlm.eval import finetune
from jaxlm.eval.tasks import glue
from jaxlm.data import pipeline
from jaxlm.eval import report
from jaxlm.data import sources
from jaxlm.data.sources import text as text_data
from jaxlm.data import tokenizer
from jaxlm.train.checkpoint import restore_params
from jaxlm.config import Config, ConfigError
from jaxlm.objectives import OBJECTIVES
from jaxlm import objectives
from jaxlm.eval.heldout import evaluate
from jaxlm.train.step import make_eval_step
from jaxlm.train.loop import train
from jaxlm.train.state import abstract_model

BASELINE = "none"  # the variant with no pre-training


@dataclasses.dataclass
class CompareConfig:
  pretrain: Config = dataclasses.field(default_factory=Config)
  objectives: str = "mlm,clm"  # comma-separated, from clm, mlm, prefix_lm
  baseline: bool = True  # also fine-tune a randomly initialised backbone
  tasks: str = "sst2,rte"  # comma-separated GLUE tasks
  glue_dir: str = ""  # GLUE TSVs; "" = $GLUE_DIR; neither set: no GLUE tasks run

  def objective_list(self) -> list[str]:
    return [o.strip() for o in self.objectives.split(",") if o.strip()]

  def task_list(self) -> list[str]:
    return [t.strip() for t in self.tasks.split(",") if t.strip()]

  def validate(self) -> CompareConfig:
    self.pretrain.validate()
    objectives = self.objective_list()
    bad = [o for o in objectives if o not in OBJECTIVES]
    if not objectives or bad or len(set(objectives)) != len(objectives):
      raise ConfigError(f"config.objectives={self.objectives!r}: a comma-separated list of "
                        f"distinct objectives from {', '.join(OBJECTIVES)}")
    for task in self.task_list():
      glue.get_task(task)
    return self


def resolve_glue_dir(config: CompareConfig) -> Path | None:
  for candidate in (config.glue_dir, os.environ.get("GLUE_DIR", "")):
    if candidate and Path(candidate).is_dir():
      return Path(candidate)
  if config.glue_dir:
    raise ConfigError(f"config.glue_dir={config.glue_dir!r}: no such directory")
  return None


def heldout_quality(run_dir: epath.Path, config: Config) -> dict:
  """Held-out metrics over every held-out row: the objective's loss and accuracy; for CLM and
  prefix-LM also perplexity and bits per byte (nats / ln 2 / UTF-8 bytes of the text the
  predicted tokens cover, estimated at the held-out text's mean bytes per token)."""
  tok = tokenizer.load_or_train(run_dir, config.data.tokenizer, [], config.model.vocab_size)
  data = pipeline.load(config, lambda _: tok)
  special = tokenizer.special_tokens(tok)
  mesh = sharding.make_mesh(config.mesh)
  _, params = restore_params(run_dir, mesh)
  graphdef, _ = abstract_model(config)
  eval_step = jax.jit(make_eval_step(graphdef, config, special))
  rows = data.heldout
  if len(rows) < config.batch_size:
    raise ConfigError(f"{run_dir}: fewer held-out rows ({len(rows)}) than one batch "
                      f"({config.batch_size}); raise data.heldout_frac")
  with jax.set_mesh(mesh):
    metrics = evaluate(eval_step, params, rows, config, sharding.batch_sharding(mesh),
                       num_batches=len(rows) // config.batch_size)
  if objectives.get(config.objective).reports_perplexity:
    heldout_texts = text_data.split_documents(sources.read_source(config),
                                              config.data.heldout_frac)[1]
    byte_count = sum(len(t.encode("utf-8")) for t in heldout_texts)
    bytes_per_token = byte_count / max(int((rows.segment_ids > 0).sum()), 1)
    metrics["bits_per_byte"] = metrics["loss"] / math.log(2) / bytes_per_token
  return metrics


def _curve(run_dir: epath.Path) -> dict:
  events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
  setup = next(e for e in events if e["split"] == "setup")
  train_events = {e["step"]: e for e in events if e["split"] == "train"}
  steps = sorted(train_events)
  tokens = [train_events[s]["tokens_seen"] for s in steps]
  return {"steps": steps, "tokens": tokens, "loss": [train_events[s]["loss"] for s in steps],
          "flops": [t * setup["flops_per_token"] for t in tokens],
          "flops_per_token": setup["flops_per_token"], "params": setup["params"]}


def run(config: CompareConfig, workdir: str | os.PathLike, *, quiet: bool = False) -> dict:
  workdir = storage.path(workdir)
  glue_dir = resolve_glue_dir(config)
  variants: dict[str, dict] = {}
  shared_tokenizer = None
  for objective in config.objective_list():
    run_config = copy.deepcopy(config.pretrain)
    run_config.objective = objective
    if shared_tokenizer is not None:
      run_config.data.tokenizer = str(shared_tokenizer)
    run_dir = workdir / "pretrain" / objective
    print(f"jaxlm compare: pre-training {objective} in {run_dir}")
    run_config = train(run_config, run_dir, quiet=quiet)["config"]
    shared_tokenizer = shared_tokenizer or run_dir / "tokenizer.json"
    variants[objective] = {"run_dir": str(run_dir), "config": run_config,
                           "curve": _curve(run_dir),
                           "heldout": heldout_quality(run_dir, run_config)}
  tok = tokenizer.load_file(shared_tokenizer)
  glue_results: dict[str, dict] = {}
  if glue_dir is not None:
    names = list(variants) + ([BASELINE] if config.baseline else [])
    for name in names:
      base = variants.get(name, variants[config.objective_list()[0]])
      run_config = copy.deepcopy(base["config"])
      if name == BASELINE:
        run_config.objective = "mlm"  # a fresh backbone read at [CLS], as in Cramming's floor
      params = None if name == BASELINE else restore_params(
        base["run_dir"], sharding.make_mesh(run_config.mesh))[1]
      for task in config.task_list():
        out = workdir / "finetune" / name / task
        if (out / "results.json").exists():
          glue_results.setdefault(name, {})[task] = json.loads((out / "results.json").read_text())
          continue
        print(f"jaxlm compare: fine-tuning {name} on {task}")
        glue_results.setdefault(name, {})[task] = finetune.run(
          run_config, task, str(glue_dir), out, params, tok,
          init=base["run_dir"] if name != BASELINE else BASELINE)
  summary = {
    "objectives": config.objective_list(), "tasks": config.task_list(),
    "glue_dir": str(glue_dir) if glue_dir else None,
    "pretrain_config": config.pretrain.to_dict(),
    "variants": {name: {"run_dir": v["run_dir"], "heldout": v["heldout"], "curve": v["curve"],
                        "tokens": v["curve"]["tokens"][-1],
                        "flops": v["curve"]["flops"][-1], "params": v["curve"]["params"]}
                 for name, v in variants.items()},
    "glue": glue_results,
  }
  storage.write_atomic(workdir / "report.json", json.dumps(summary, indent=2))
  report.write(summary, workdir)
  return summary
