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

from jaxlm import objectives, storage
from jaxlm.config import replace_at
from jaxlm.studies import compare_report, runs, variants
from jaxlm.studies.config import CompareConfig
from jaxlm.studies.results import (
  Difference,
  finetune_differences,
  holm,
  items_difference,
  zero_shot_difference,
)

BASELINE = "none"  # the arms with no pre-training: `none` (bidirectional), `none_causal`
check = runs.check  # everything compare can refuse before it trains


def baseline_name(config) -> str:
  """The untrained arm a variant is compared with: a fresh backbone with the attention and
  read-out its fine-tuning uses (bidirectional at [CLS]: `none`; causal at the last token:
  `none_causal`), so a difference measures pre-training, not the attention type."""
  attention = objectives.get(config.objective).classifier_attention
  return BASELINE if attention == "bidirectional" else f"{BASELINE}_{attention}"


def run(config: CompareConfig, workdir: str | os.PathLike, *, quiet: bool = False) -> dict:
  data_dir = check(config)
  workdir = storage.path(workdir)
  arms = [runs.Arm(name, name, variants.pretrain_config(config.pretrain, name),
                   workdir / "pretrain" / name) for name in config.objectives]
  pretrained = runs.pretrain(arms, "compare", quiet=quiet)
  scored = runs.zero_shot(pretrained, config.zero_shot, config.zero_shot_sample, "compare")
  curves = runs.learning_curve(pretrained, config.zero_shot, config.curve_sample, "compare")

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
  finetuned = runs.finetune(ft_arms, config, data_dir, first.tokenizer, "compare")
  measured_against = runs.finetune_references(pretrained, config, data_dir,
                                              workdir / "references", "compare")

  summary = {
    "objectives": list(config.objectives), "tasks": list(config.tasks),
    "variant_descriptions": {r.name: variants.VARIANTS[r.name][0] for r in pretrained},
    "zero_shot_tasks": list(scored), "baseline": BASELINE if config.baseline else None,
    "baselines": {r.name: baseline_name(r.config) for r in pretrained} if config.baseline else {},
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
    names = list(per_run)
    for i, a in enumerate(names):
      for b in names[i + 1:]:
        rows.append(zero_shot_difference(task, a, b, per_run[a]["correct"],
                                         per_run[b]["correct"]))
      for ref, result in per_run[a].get("references", {}).items():
        rows.append(zero_shot_difference(task, a, ref, per_run[a]["correct"], result["correct"]))
  for task, found in summary.get("references", {}).items():
    for name, probed in found["probe"].items():
      for split, result in probed["pretrained"].items():
        if "correct" in result:
          rows.append(Difference("probe", task, f"{name} features", "random features",
                                 "examples", items_difference(
                                   result["correct"], probed["random"][split]["correct"]),
                                 split))
  return holm(rows)
