"""`jaxlm scale`: scaling laws per objective. A grid of model sizes (width and depth from one
rule) is pre-trained for each objective at each token budget on the same data, tokenizer and
schedule rule; every run logs a held-out learning curve and is scored zero-shot (BLiMP) and
fine-tuned on the shipped task. Then, per objective, power laws L = E + A·x^(−α) are fitted to
held-out loss against compute (on the compute-efficient frontier of the learning curves, as
Kaplan et al. 2020) and against non-embedding parameters (final losses, per token budget), with
95% intervals (`power_law.py`), and downstream quality is set against FLOPs (`scale_report.py`).

The size rule (Kaplan et al. found loss depends little on shape at fixed parameters): L layers,
width D = width_per_layer · L, heads of `head_dim`, MLP `mlp_ratio` · D. Steps = tokens /
(batch · seq_len), warmup a fixed fraction of the steps, the base config's schedule otherwise.

With `pretrain_seeds` > 1 every point also trains at seeds 1.. (runs/<variant>/<point>-seedK):
the fits use each point's mean over seeds, and each matched difference gets an interval over
pre-training seeds.

Outputs in WORKDIR: runs/<variant>/L{L}-D{D}-{tokens}/ (each a jaxlm run with TASK.json per
zero-shot task), finetune/<variant>/<point>/<task>/, scale.md, scale.json and plots. Rerunning
resumes: finished runs, zero-shot scores and fine-tunings are not redone.
"""

from __future__ import annotations

import dataclasses
import os

from jaxlm import storage
from jaxlm.config import Config
from jaxlm.objectives.build import non_embedding_params
from jaxlm.studies import runs, scale_report, variants
from jaxlm.studies.config import ScaleConfig


def point_name(layers: int, width: int, tokens: int) -> str:
  return f"L{layers}-D{width}-{tokens / 1e6:g}M"


def point_config(config: ScaleConfig, variant: str, layers: int, width: int,
                 tokens: int) -> Config:
  """The pre-training config of one grid point: the variant of `config.pretrain` at this size,
  with steps for this token budget."""
  base = variants.pretrain_config(config.pretrain, variant)
  steps = max(1, round(tokens / (base.batch_size * base.seq_len)))
  model = dataclasses.replace(base.model, num_layers=layers, embed_dim=width,
                              num_heads=width // config.head_dim, mlp_dim=config.mlp_ratio * width)
  optimizer = dataclasses.replace(base.optimizer,
                                  warmup_steps=max(1, round(config.warmup_frac * steps)))
  # A point's learning curve is its periodic held-out evaluation (eval_every), not milestones.
  run = dataclasses.replace(base, model=model, optimizer=optimizer, steps=steps,
                            checkpoint_tokens=(), eval_every=max(1, steps // config.curve_points),
                            log_every=max(1, min(base.log_every, steps // config.curve_points)))
  return run.validate()


def arms(config: ScaleConfig, workdir) -> dict[runs.Arm, tuple[int, int, int, int]]:
  """Every grid point of every variant at every pre-training seed, variant by variant,
  smallest first, with its (layers, width, tokens, seed index k); seed k > 0 runs as
  POINT-seedK with `pretrain.seed + k`."""
  out = {}
  for variant in config.objectives:
    for L, D, n in config.grid():
      for k in range(config.pretrain_seeds):
        name = point_name(L, D, n) + (f"-seed{k}" if k else "")
        run_config = point_config(config, variant, L, D, n)
        run_config = dataclasses.replace(run_config, seed=run_config.seed + k)
        out[runs.Arm(f"{variant}/{name}", variant, run_config,
                     workdir / "runs" / variant / name)] = (L, D, n, k)
  return out


def check(config: ScaleConfig) -> str | None:
  data_dir = runs.check(config)
  for variant in config.objectives:
    for L, D, n in config.grid():
      point_config(config, variant, L, D, n)
  return data_dir


def run(config: ScaleConfig, workdir: str | os.PathLike, *, quiet: bool = False) -> dict:
  data_dir = check(config)
  workdir = storage.path(workdir)
  grid = arms(config, workdir)
  pretrained = runs.pretrain(list(grid), "scale", quiet=quiet)
  scored = runs.zero_shot(pretrained, config.zero_shot, config.zero_shot_sample, "scale",
                          quiet=quiet)
  finetuned = runs.finetune([runs.FinetuneArm(r.name, r.config, r, workdir / "finetune" / r.name)
                             for r in pretrained], config, data_dir, pretrained[0].tokenizer,
                            "scale", quiet=quiet)
  points = []
  for r in pretrained:
    L, D, n, k = grid[r.arm]
    points.append({
      "variant": r.arm.variant, "point": point_name(L, D, n), "seed": k, "layers": L,
      "width": D, "tokens": n, "run_dir": str(r.arm.run_dir),
      "non_embedding_params": non_embedding_params(r.config), "curve": r.curve.heldout_json(),
      "heldout": r.heldout.to_json(),
      "zero_shot": {task: per_run[r.name] for task, per_run in scored.items()},
      "finetune": finetuned.get(r.name, {})})
  summary = scale_report.summarize(config, points)
  runs.write_json(workdir / "scale.json", summary)
  if runs.is_writer():
    scale_report.write(summary, workdir)
  return summary
