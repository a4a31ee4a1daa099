"""`jaxlm compare`: pre-train variants that differ only in objective (and its options: masking,
next-sentence prediction; `variants.py`), evaluate each zero-shot
(BLiMP), fine-tune each (and a no-pre-training baseline) on the fine-tuning tasks with one
recipe and several seeds, and report every difference with its 95% interval.

Fairness is by construction: every variant is the same `pretrain` config with only its
objective and options changed, so data, tokenizer (trained once, then shared by file), model
shape, steps and learning-rate schedule are identical; packed objectives read the same rows in
the same order (next-sentence variants read sentence pairs cut from the same documents); MLM
masking happens on the device from the same seed.
Outputs in WORKDIR: pretrain/<variant>/ (runs, blimp.json), finetune/<variant>/<task>/
(results), report.md, report.json and PNG plots. Rerunning resumes: finished runs, BLiMP scores
and fine-tuning results are not redone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time

import jax
import numpy as np
from etils import epath

from jaxlm import api, objectives, sharding, storage
from jaxlm.config import Config, ConfigError, replace_at
from jaxlm.data import pipeline, sources, tokenizer
from jaxlm.data.sources import text as text_data
from jaxlm.eval import finetune, mlm_baseline, report, stats, tasks, variants as variants_
from jaxlm.eval.heldout import evaluate
from jaxlm.eval.recipe import FinetuneConfig
from jaxlm.train.checkpoint import restore_params
from jaxlm.train.loop import train
from jaxlm.train.state import abstract_model
from jaxlm.train.step import make_eval_step

BASELINE = "none"  # the variant with no pre-training


def comma_list(text: str) -> list[str]:
  """The non-empty, stripped items of a comma-separated config value."""
  return [item.strip() for item in text.split(",") if item.strip()]


@dataclasses.dataclass(frozen=True)
class CompareConfig:
  pretrain: Config = dataclasses.field(default_factory=Config)
  # Comma-separated variants (jaxlm.eval.variants): an objective (clm, mlm, mlm_nsp, prefix_lm)
  # or a named variant of one (mlm_wwm, mlm_span, mlm_nsp_wwm).
  objectives: str = "mlm,clm"
  baseline: bool = True  # also fine-tune a randomly initialised backbone
  # Comma-separated fine-tuning tasks of jaxlm.eval.tasks: goemotions_sentiment ships; GLUE
  # tasks (sst2, rte, ...) read --config.glue_dir or $GLUE_DIR.
  tasks: str = "goemotions_sentiment"
  zero_shot: str = "blimp"  # comma-separated zero-shot tasks; "" for none
  blimp_per_paradigm: int = 100  # pairs per BLiMP paradigm (67 paradigms); 0: all 1,000
  finetune: FinetuneConfig = dataclasses.field(default_factory=FinetuneConfig)
  glue_dir: str = ""  # GLUE TSVs or tfds:DATA_DIR; "" = $GLUE_DIR

  def objective_list(self) -> list[str]:
    return comma_list(self.objectives)

  def task_list(self) -> list[str]:
    return comma_list(self.tasks)

  def zero_shot_list(self) -> list[str]:
    return comma_list(self.zero_shot)

  def validate(self) -> CompareConfig:
    self.pretrain.validate()
    self.finetune.validate()
    objectives = self.objective_list()
    bad = [o for o in objectives if o not in variants_.VARIANTS]
    if not objectives or bad or len(set(objectives)) != len(objectives):
      raise ConfigError(f"config.objectives={self.objectives!r}: a comma-separated list of "
                        f"distinct variants from {', '.join(variants_.VARIANTS)}")
    for name in objectives:
      variants_.pretrain_config(self.pretrain, name)
    for name in self.task_list():
      tasks.get(name, "finetune")
    for name in self.zero_shot_list():
      tasks.get(name, "zero_shot")
    if self.blimp_per_paradigm < 0 or self.blimp_per_paradigm > 1000:
      raise ConfigError(f"config.blimp_per_paradigm={self.blimp_per_paradigm}: must be in "
                        "[0, 1000] (0: all)")
    return self


def resolve_data_dir(config: CompareConfig) -> str | None:
  """Where tasks that do not ship read their files: config.glue_dir, else $GLUE_DIR. A task
  that needs them and has none is a one-line error before anything trains."""
  data_dir = config.glue_dir or os.environ.get("GLUE_DIR", "")
  if data_dir and not data_dir.startswith("tfds:") and not storage.path(data_dir).is_dir():
    raise ConfigError(f"config.glue_dir={data_dir!r}: no such directory")
  needing = [t for t in config.task_list() if tasks.get(t).needs_data_dir]
  if needing and not data_dir:
    raise ConfigError(f"config.tasks={config.tasks!r}: {', '.join(needing)} need GLUE data; set "
                      "--config.glue_dir or $GLUE_DIR, or use the shipped goemotions_sentiment")
  return data_dir or None


def heldout_quality(run_dir: epath.Path, config: Config) -> dict:
  """Held-out metrics over every held-out row: the objective's loss and accuracy, the two
  context-free baselines of `mlm_baseline` for that accuracy; for CLM and
  prefix-LM also perplexity and bits per byte (nats / ln 2 / UTF-8 bytes of the text the
  predicted tokens cover, estimated at the held-out text's mean bytes per token)."""
  tok = tokenizer.load_or_train(run_dir, config.data.tokenizer, [], config.data.vocab_size)
  data = pipeline.load(config, lambda _: tok, objectives.get(config.objective).rows)
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
  if "nsp_loss" in metrics:  # MLM + NSP: `loss` is the masked-token part, comparable with MLM's
    metrics["loss_with_nsp"], metrics["loss"] = metrics["loss"], metrics.pop("mlm_loss")
    metrics["nsp_accuracy_halfwidth"] = stats.binomial_halfwidth(
      metrics["nsp_accuracy"], len(rows) // config.batch_size * config.batch_size)
  metrics["unigram_baseline"] = mlm_baseline.unigram_accuracy(data.train, rows,
                                                              special.special_ids)
  metrics["row_mode_baseline"] = mlm_baseline.row_mode_accuracy(rows, special.special_ids)
  metrics["accuracy_halfwidth"] = stats.binomial_halfwidth(
    min(max(metrics["accuracy"], 0.0), 1.0), max(int(metrics.get("predicted_tokens", 1)), 1))
  if objectives.get(config.objective).reports_perplexity:
    heldout_texts = text_data.split_documents(sources.read_source(config),
                                              config.data.heldout_frac)[1]
    byte_count = sum(len(t.encode("utf-8")) for t in heldout_texts)
    bytes_per_token = byte_count / max(int((rows.segment_ids > 0).sum()), 1)
    metrics["bits_per_byte"] = metrics["loss"] / math.log(2) / bytes_per_token
  return metrics


def curve(run_dir: epath.Path) -> dict:
  events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
  setup = next(e for e in events if e["split"] == "setup")
  train_events = {e["step"]: e for e in events if e["split"] == "train"}
  steps = sorted(train_events)
  tokens = [train_events[s]["tokens_seen"] for s in steps]
  # Time in training steps, from the log (so a resumed or already finished run reports its own
  # time, not this call's): each logged window's mean step time times its steps.
  seconds = sum(train_events[s]["step_time"] * (s - before)
                for before, s in zip([0] + steps[:-1], steps))
  return {"steps": steps, "tokens": tokens, "loss": [train_events[s]["loss"] for s in steps],
          "flops": [t * setup["flops_per_token"] for t in tokens],
          "flops_per_token": setup["flops_per_token"], "params": setup["params"],
          "seconds": seconds}


def train_ids(config: Config, tok) -> np.ndarray:
  """Every token id of the packed training rows (special tokens dropped): the text the
  unigram floor is fitted on."""
  rows = pipeline.load(config, lambda _: tok).train
  ids = rows.tokens[rows.segment_ids > 0]
  return ids[~np.isin(ids, np.asarray(tokenizer.special_tokens(tok).special_ids))]


def zero_shot(name: str, run_dir: str | os.PathLike, blimp_per_paradigm: int, train_ids) -> dict:
  """A zero-shot task's result for one pre-trained run, cached in its run directory (redone
  when the number of pairs per paradigm changed)."""
  out = storage.path(run_dir) / f"{name}.json"
  per_paradigm = blimp_per_paradigm or None
  if out.exists():
    cached = json.loads(out.read_text())
    if cached.get("per_paradigm_setting") == per_paradigm and "unigram_floor" in cached:
      return cached
  start = time.perf_counter()
  result = tasks.get(name, "zero_shot").evaluate(api.load(run_dir),
                                                 train_ids=train_ids, per_paradigm=per_paradigm)
  result["seconds"] = time.perf_counter() - start
  result["per_paradigm_setting"] = per_paradigm
  if jax.process_index() == 0:
    storage.write_atomic(out, json.dumps(result))
  return result


def run(config: CompareConfig, workdir: str | os.PathLike, *, quiet: bool = False) -> dict:
  config.validate()
  workdir = storage.path(workdir)
  data_dir = resolve_data_dir(config)
  variants: dict[str, dict] = {}
  shared_tokenizer = None
  for objective in config.objective_list():
    run_config = variants_.pretrain_config(config.pretrain, objective)
    if shared_tokenizer is not None:
      run_config = replace_at(run_config, "data.tokenizer", str(shared_tokenizer))
    run_dir = workdir / "pretrain" / objective
    print(f"jaxlm compare: pre-training {objective} ({variants_.VARIANTS[objective][0]}) in "
          f"{run_dir}")
    run_config = train(run_config, run_dir, quiet=quiet)["config"]
    shared_tokenizer = shared_tokenizer or run_dir / "tokenizer.json"
    logged = curve(run_dir)
    variants[objective] = {"run_dir": str(run_dir), "config": run_config,
                           "curve": logged, "seconds": logged["seconds"],
                           "heldout": heldout_quality(run_dir, run_config)}
  tok = tokenizer.load_file(shared_tokenizer)
  first = variants[config.objective_list()[0]]

  scored: dict[str, dict] = {}
  if config.zero_shot_list():
    if jax.process_count() > 1:
      print("jaxlm compare: zero-shot tasks run on one process; skipped here (run "
            "`jaxlm eval --workdir RUN --task blimp` per run)")
    else:
      ids = train_ids(first["config"], tok)
      for name in config.zero_shot_list():
        for objective, variant in variants.items():
          print(f"jaxlm compare: {name} zero-shot for {objective}")
          scored.setdefault(name, {})[objective] = zero_shot(
            name, variant["run_dir"], config.blimp_per_paradigm, ids)

  finetuned: dict[str, dict] = {}
  names = list(variants) + ([BASELINE] if config.baseline else [])
  for name in names:
    base = variants.get(name, first)
    run_config = base["config"]
    if name == BASELINE:  # a fresh backbone read at [CLS], as in Cramming's floor
      run_config = replace_at(replace_at(run_config, "objective", "mlm"),
                              "model.type_vocab_size", config.pretrain.model.type_vocab_size)
    params = None if name == BASELINE else restore_params(
      base["run_dir"], sharding.make_mesh(run_config.mesh))[1]
    for task in config.task_list():
      out = workdir / "finetune" / name / task
      if (out / "results.json").exists():
        cached = json.loads((out / "results.json").read_text())
        if cached.get("recipe") == dataclasses.asdict(config.finetune):  # else: a new recipe
          finetuned.setdefault(name, {})[task] = cached
          continue
      print(f"jaxlm compare: fine-tuning {name} on {task}")
      start = time.perf_counter()
      result = finetune.run(run_config, config.finetune, task, data_dir, out, params, tok,
                            init=base["run_dir"] if name != BASELINE else BASELINE)
      result["seconds"] = time.perf_counter() - start
      finetuned.setdefault(name, {})[task] = result

  summary = {
    "objectives": config.objective_list(), "tasks": config.task_list(),
    "variant_descriptions": {name: variants_.VARIANTS[name][0] for name in variants},
    "zero_shot_tasks": list(scored), "baseline": BASELINE if config.baseline else None,
    "data_dir": data_dir, "pretrain_config": config.pretrain.to_dict(),
    "finetune_recipe": dataclasses.asdict(config.finetune),
    "variants": {name: {"run_dir": v["run_dir"], "heldout": v["heldout"], "curve": v["curve"],
                        "seconds": v["seconds"], "tokens": v["curve"]["tokens"][-1],
                        "flops": v["curve"]["flops"][-1], "params": v["curve"]["params"]}
                 for name, v in variants.items()},
    "zero_shot": scored,
    "finetune": finetuned,
  }
  summary["comparisons"] = differences(summary)
  if jax.process_index() == 0:
    storage.write_atomic(workdir / "report.json", json.dumps(summary, indent=1))
    report.write(summary, workdir)
  return summary


def _pairs(summary: dict) -> list[tuple[str, str]]:
  """(a, b) for every difference the report shows: each objective pair, then each variant minus
  the baseline."""
  objectives_ = summary["objectives"]
  pairs = [(a, b) for i, a in enumerate(objectives_) for b in objectives_[i + 1:]]
  if summary["baseline"]:
    pairs += [(a, summary["baseline"]) for a in objectives_]
  return pairs


def differences(summary: dict) -> list[dict]:
  """Every comparison of the report as a difference with its 95% intervals (points, 0-100).

  Fine-tuning: `seeds` is the paired t-interval over fine-tuning seeds (seed k of both variants
  shares the head's initialisation and the data order); `examples` the paired bootstrap over
  the split's examples for the first seed. BLiMP: the paired bootstrap over pairs, against the
  other objectives and against the unigram floor.
  """
  rows = []
  for task, per_variant in _by_task(summary["finetune"]).items():
    for split in next(iter(per_variant.values()))["summary"]:
      for a, b in _pairs(summary):
        if a not in per_variant or b not in per_variant:
          continue
        ra, rb = per_variant[a], per_variant[b]
        sa = {s["seed"]: s["metrics"][split]["score"] for s in ra["seeds"]}
        sb = {s["seed"]: s["metrics"][split]["score"] for s in rb["seeds"]}
        row = {"kind": "finetune", "task": task, "split": split, "a": a, "b": b,
               "seeds": list(stats.seed_spread_diff(sa, sb)),
               "a_range": [min(sa.values()), max(sa.values())],
               "b_range": [min(sb.values()), max(sb.values())]}
        ca, cb = ra["seeds"][0].get("correct", {}), rb["seeds"][0].get("correct", {})
        if split in ca and split in cb:
          row["examples"] = list(stats.paired_bootstrap_diff(np.asarray(ca[split]) * 100.0,
                                                             np.asarray(cb[split]) * 100.0))
        rows.append(row)
  for task, per_variant in summary["zero_shot"].items():
    names = list(per_variant)
    for i, a in enumerate(names):
      for b in names[i + 1:]:
        rows.append({"kind": "zero_shot", "task": task, "a": a, "b": b, "examples": list(
          stats.paired_bootstrap_diff(np.asarray(per_variant[a]["correct"]) * 100.0,
                                      np.asarray(per_variant[b]["correct"]) * 100.0))})
      if "minus_floor" in per_variant[a]:
        rows.append({"kind": "zero_shot", "task": task, "a": a, "b": "unigram floor",
                     "examples": per_variant[a]["minus_floor"]})
  for row in rows:
    row["outside_zero"] = {k: bool(row[k][1] > 0 or row[k][2] < 0)
                           for k in ("seeds", "examples") if k in row}
    row["beyond_seed_range"] = (bool(row["a_range"][0] > row["b_range"][1] or
                                     row["a_range"][1] < row["b_range"][0])
                                if "a_range" in row else None)
  return rows


def _by_task(finetuned: dict) -> dict[str, dict]:
  out: dict[str, dict] = {}
  for variant, per_task in finetuned.items():
    for task, result in per_task.items():
      out.setdefault(task, {})[variant] = result
  return out
