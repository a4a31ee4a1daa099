"""`jaxlm compare`: pre-train variants that differ only in objective (and its options: masking,
next-sentence prediction; `variants.py`), evaluate each zero-shot (BLiMP), fine-tune each (and
a no-pre-training baseline) on the fine-tuning tasks with one recipe and several seeds, and
report every difference with its 95% interval.

Fairness is by construction: every variant is the same `pretrain` config with only its
objective and options changed, so data, tokenizer (trained once, then shared by file), model
shape, steps and learning-rate schedule are identical; packed objectives read the same rows in
the same order (next-sentence variants read sentence pairs cut from the same documents); MLM
masking happens on the device from the same seed.
Outputs in WORKDIR: pretrain/<variant>/ (runs, TASK.json per zero-shot task),
finetune/<variant>/<task>/ (results), report.md, report.json and PNG plots. Rerunning resumes:
finished runs, zero-shot scores and fine-tuning results are not redone.
"""

from __future__ import annotations

import dataclasses
import os

from jaxlm import objectives, stats, storage
from jaxlm.config import replace_at
from jaxlm.eval import tasks
from jaxlm.studies import compare_report, runs, variants
from jaxlm.studies.config import CompareConfig
from jaxlm.studies.curves import ProbeData, learning_curve
from jaxlm.studies.results import (
  Difference,
  finetune_differences,
  headline_split,
  holm,
  items_difference,
  zero_shot_difference,
)

BASELINE = "none"  # the arms with no pre-training: `none` (bidirectional), `none_causal`


def check(config: CompareConfig) -> str | None:
  """Everything compare can refuse before it trains (`runs.check`, and the in-domain task)."""
  data_dir = runs.check(config)
  if config.in_domain:
    tasks.get(config.in_domain, "finetune")
    data_dir = runs.task_data_dir((*config.tasks, config.in_domain), config.glue_dir)
  return data_dir


def baseline_name(config) -> str:
  """The untrained arm a variant is compared with: a fresh backbone with the attention and
  read-out its fine-tuning uses (bidirectional at [CLS]: `none`; causal at the last token:
  `none_causal`), so a difference measures pre-training, not the attention type."""
  attention = objectives.get(config.objective).classifier_attention
  return BASELINE if attention == "bidirectional" else f"{BASELINE}_{attention}"


def seeded(variant: str, k: int) -> str:
  """The arm of `variant` at pre-training seed index k (k = 0: the variant's own name)."""
  return variant if k == 0 else f"{variant}-seed{k}"


def run(config: CompareConfig, workdir: str | os.PathLike, *, quiet: bool = False) -> dict:
  data_dir = check(config)
  workdir = storage.path(workdir)
  if config.in_domain:  # the in-domain control: the task's own training texts
    source = runs.in_domain_source(config.in_domain, data_dir, workdir / "in_domain")
    config = dataclasses.replace(config, pretrain=replace_at(config.pretrain, "data.source",
                                                              source))
  arms = [runs.Arm(seeded(name, k), name,
                   replace_at(variants.pretrain_config(config.pretrain, name), "seed",
                              config.pretrain.seed + k),
                   workdir / "pretrain" / seeded(name, k))
          for k in range(config.pretrain_seeds) for name in config.objectives]
  pretrained = runs.pretrain(arms, "compare", quiet=quiet)
  scored = runs.zero_shot(pretrained, config.zero_shot, config.zero_shot_sample, "compare",
                          quiet=quiet)
  measured_against = runs.finetune_references(pretrained, config, data_dir,
                                              workdir / "references", "compare", quiet=quiet)
  curves = learning_curve(pretrained, config.zero_shot, config.curve_sample, "compare",
                          ProbeData.first_of(config, data_dir), measured_against, scored,
                          config.zero_shot_sample, quiet=quiet)

  first = pretrained[0]
  ft_arms = [runs.FinetuneArm(r.name, r.config, r, workdir / "finetune" / r.name)
             for r in pretrained]
  baselines = {}  # one fresh backbone per fine-tuning attention, as in Cramming's floor
  if config.baseline:
    for r in pretrained:
      name = baseline_name(r.config)
      if name not in baselines:
        baselines[name] = replace_at(replace_at(first.config, "objective", r.config.objective),
                                     "model.type_vocab_size",
                                     config.pretrain.model.type_vocab_size)
        ft_arms.append(runs.FinetuneArm(name, baselines[name], None, workdir / "finetune" / name))
  finetuned = runs.finetune(ft_arms, config, data_dir, first.tokenizer, "compare", quiet=quiet)

  summary = {
    "objectives": list(config.objectives), "tasks": list(config.tasks),
    "pretrain_seeds": config.pretrain_seeds, "in_domain": config.in_domain,
    "variant_descriptions": {name: variants.VARIANTS[name][0] for name in config.objectives},
    "zero_shot_tasks": list(scored), "baseline": BASELINE if config.baseline else None,
    "baselines": ({r.name: baseline_name(r.config) for r in pretrained} if config.baseline
                  else {}),
    "data_dir": data_dir, "pretrain_config": config.pretrain.to_dict(),
    "finetune_recipe": dataclasses.asdict(config.finetune),
    "variants": {r.name: {"run_dir": str(r.arm.run_dir), "heldout": r.heldout.to_json(),
                          "curve": r.curve.to_json(), "seconds": r.curve.seconds,
                          "tokens": r.curve.tokens[-1],
                          "flops": r.curve.tokens[-1] * r.curve.flops_per_token,
                          "params": r.curve.params} for r in pretrained},
    "zero_shot": scored,
    "finetune": finetuned,
    "references": measured_against,
    "learning_curve": curves,
  }
  summary["comparisons"] = [d.to_json() for d in differences(summary)]
  runs.write_json(workdir / "report.json", summary)
  if runs.is_writer():
    compare_report.write(summary, workdir)
  return summary


def _pairs(summary: dict) -> list[tuple[str, str]]:
  """(a, b) for every difference the report shows: each objective pair, then each variant minus
  the baseline."""
  names = summary["objectives"]
  pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
  return pairs + [(a, summary["baselines"][a]) for a in names if a in summary.get("baselines", {})]


def pretraining_seed_differences(summary: dict) -> list[Difference]:
  """With several pre-training seeds: each pair of variants (and each variant minus its
  untrained arm) over pre-training seeds, a paired t-interval over seed indices k of the
  per-run scores (fine-tuning: the mean over fine-tuning seeds on the headline split; zero-shot:
  the overall accuracy). The untrained arm has no pre-training seed: its mean is subtracted."""
  k_max = summary.get("pretrain_seeds", 1)
  if k_max < 2:
    return []
  names = summary["objectives"]
  pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
  rows = []
  tasks_ = {t for per_task in summary["finetune"].values() for t in per_task}
  for task in sorted(tasks_):
    def level(arm: str) -> float | None:
      result = summary["finetune"].get(arm, {}).get(task)
      return None if result is None else result["summary"][headline_split(result)]["score"]["mean"]
    split = next(headline_split(r[task]) for r in summary["finetune"].values() if task in r)
    for a, b in pairs + [(a, summary.get("baselines", {}).get(a)) for a in names]:
      if b is None:
        continue
      diffs = {k: level(seeded(a, k)) - level(b if b not in names else seeded(b, k))
               for k in range(k_max) if level(seeded(a, k)) is not None
               and level(b if b not in names else seeded(b, k)) is not None}
      if len(diffs) >= 2:
        rows.append(Difference("finetune", task, a, b, "pretraining seeds",
                               stats.mean_ci(list(diffs.values())), split))
  for task, per_run in summary["zero_shot"].items():
    for a, b in pairs:
      diffs = [per_run[seeded(a, k)]["overall"] - per_run[seeded(b, k)]["overall"]
               for k in range(k_max) if seeded(a, k) in per_run and seeded(b, k) in per_run]
      if len(diffs) >= 2:
        rows.append(Difference("zero_shot", task, a, b, "pretraining seeds",
                               stats.mean_ci(diffs)))
  return rows


def differences(summary: dict) -> list[Difference]:
  """Every comparison of the report with its 95% interval (points, 0-100) and its p-value
  after Holm's correction over all of them: fine-tuning over seeds and over the first seed's
  examples; zero-shot over items, between the objectives and against each reference the task
  gives."""
  rows = []
  by_task: dict[str, dict] = {}
  for arm, per_task in summary["finetune"].items():
    for task, result in per_task.items():
      by_task.setdefault(task, {})[arm] = result
  for task, per_arm in by_task.items():
    for split in next(iter(per_arm.values()))["summary"]:
      for a, b in _pairs(summary):
        if a in per_arm and b in per_arm:
          rows += finetune_differences(task, a, b, per_arm[a], per_arm[b], [split])
  for task, per_run in summary["zero_shot"].items():
    names = [n for n in summary["objectives"] if n in per_run]  # seed 0 of each variant
    for i, a in enumerate(names):
      for b in names[i + 1:]:
        rows.append(zero_shot_difference(task, a, b, per_run[a]["correct"],
                                         per_run[b]["correct"]))
      for ref, result in per_run[a].get("references", {}).items():
        rows.append(zero_shot_difference(task, a, ref, per_run[a]["correct"], result["correct"]))
  rows += pretraining_seed_differences(summary)
  for task, found in summary.get("references", {}).items():
    for name, probed in found["probe"].items():
      if name not in summary["objectives"]:
        continue  # seed 0 of each variant
      for split, result in probed["pretrained"].items():
        if "correct" in result:
          rows.append(items_difference("probe", task, f"{name} (frozen features)",
                                       f"{name} (random-init features)", result["correct"],
                                       probed["random"][split]["correct"], split))
  return holm(rows)
