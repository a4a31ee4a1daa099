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

Outputs in WORKDIR: runs/<variant>/L{L}-D{D}-{tokens}/ (each a jaxlm run with blimp.json),
finetune/<variant>/<point>/<task>/, scale.md, scale.json and plots. Rerunning resumes: finished
runs, zero-shot scores and fine-tunings are not redone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import jax
from etils import epath

from jaxlm import sharding, storage
from jaxlm.config import Config, ConfigError, replace_at
from jaxlm.data import tokenizer
from jaxlm.eval import compare, finetune, scale_report, tasks, variants
from jaxlm.eval.recipe import FinetuneConfig
from jaxlm.train.checkpoint import restore_params
from jaxlm.train.loop import train


def _ints(text: str) -> list[int]:
  return [int(float(v)) for v in compare.comma_list(text)]


@dataclasses.dataclass(frozen=True)
class ScaleConfig:
  pretrain: Config = dataclasses.field(default_factory=Config)
  objectives: str = "mlm,clm"  # comma-separated variants of jaxlm.eval.variants
  depths: str = "1,2,3,4"  # comma-separated layer counts, one grid size each
  width_per_layer: int = 64  # D = width_per_layer * L
  head_dim: int = 32  # heads = D / head_dim
  mlp_ratio: int = 4  # MLP width = mlp_ratio * D
  tokens: str = "500000"  # comma-separated pre-training token budgets (each size trains at each)
  curve_points: int = 8  # held-out evaluations along each run (the learning curve)
  warmup_frac: float = 0.1  # warmup steps as a share of each run's steps
  zero_shot: str = "blimp"  # comma-separated zero-shot tasks; "" for none
  blimp_per_paradigm: int = 20  # pairs per BLiMP paradigm (67 paradigms); 0: all 1,000
  tasks: str = "goemotions_sentiment"  # comma-separated fine-tuning tasks; "" for none
  finetune: FinetuneConfig = dataclasses.field(default_factory=FinetuneConfig)
  glue_dir: str = ""  # GLUE TSVs or tfds:DATA_DIR; "" = $GLUE_DIR

  objective_list = compare.CompareConfig.objective_list
  task_list = compare.CompareConfig.task_list
  zero_shot_list = compare.CompareConfig.zero_shot_list

  def grid(self) -> list[tuple[int, int, int]]:
    """(layers, width, tokens) of every grid point, smallest first."""
    return [(L, self.width_per_layer * L, n) for n in _ints(self.tokens)
            for L in _ints(self.depths)]

  def validate(self) -> ScaleConfig:
    self.pretrain.validate()
    self.finetune.validate()
    names = self.objective_list()
    if not names or len(set(names)) != len(names) or any(
        n not in variants.VARIANTS for n in names):
      raise ConfigError(f"config.objectives={self.objectives!r}: a comma-separated list of "
                        f"distinct variants from {', '.join(variants.VARIANTS)}")
    for key in ("depths", "tokens"):
      try:
        values = _ints(getattr(self, key))
      except ValueError:
        values = []
      if not values or min(values) <= 0 or len(set(values)) != len(values):
        raise ConfigError(f"config.{key}={getattr(self, key)!r}: a comma-separated list of "
                          "distinct positive numbers")
    for key in ("width_per_layer", "head_dim", "mlp_ratio", "curve_points"):
      if getattr(self, key) <= 0:
        raise ConfigError(f"config.{key}={getattr(self, key)}: must be a positive integer")
    if self.width_per_layer % self.head_dim:
      raise ConfigError(f"config.head_dim={self.head_dim}: must divide "
                        f"config.width_per_layer={self.width_per_layer}")
    if not 0.0 <= self.warmup_frac < 1.0:
      raise ConfigError(f"config.warmup_frac={self.warmup_frac}: must be in [0, 1)")
    if not 0 <= self.blimp_per_paradigm <= 1000:
      raise ConfigError(f"config.blimp_per_paradigm={self.blimp_per_paradigm}: must be in "
                        "[0, 1000] (0: all)")
    tokens_per_step = self.pretrain.batch_size * self.pretrain.seq_len
    for n in _ints(self.tokens):
      if n < tokens_per_step * self.curve_points:
        raise ConfigError(f"config.tokens: {n} tokens make fewer than config.curve_points="
                          f"{self.curve_points} steps of {tokens_per_step} tokens")
    for L, D, n in self.grid():
      for name in names:
        point_config(self, name, L, D, n)
    for name in self.task_list():
      tasks.get(name, "finetune")
    for name in self.zero_shot_list():
      tasks.get(name, "zero_shot")
    return self


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
  run = dataclasses.replace(base, model=model, optimizer=optimizer, steps=steps,
                            eval_every=max(1, steps // config.curve_points),
                            log_every=max(1, min(base.log_every, steps // config.curve_points)))
  return run.validate()


def non_embedding_params(config: Config) -> int:
  """Parameters outside the token, position and token-type tables (Kaplan et al.'s N); the
  model's vocabulary size must be resolved (a finished run's config)."""
  from jaxlm.train.state import abstract_model  # noqa: PLC0415 - the model stack loads late
  total = 0
  for path, leaf in jax.tree_util.tree_flatten_with_path(abstract_model(config)[1])[0]:
    names = {getattr(p, "key", getattr(p, "name", None)) for p in path}
    if not names & {"embed", "pos_embed", "type_embed"}:
      total += leaf.size
  return int(total)


def _learning_curve(run_dir: epath.Path) -> dict:
  events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
  setup = next(e for e in events if e["split"] == "setup")
  evals = {e["step"]: e for e in events if e["split"] == "eval"}  # the last of a step wins
  train_events = [e for e in events if e["split"] == "train"]
  tokens_per_step = train_events[-1]["tokens_seen"] / train_events[-1]["step"]
  steps = sorted(evals)
  return {"steps": steps, "tokens": [s * tokens_per_step for s in steps],
          "flops": [s * tokens_per_step * setup["flops_per_token"] for s in steps],
          "loss": [evals[s]["loss"] for s in steps],
          "flops_per_token": setup["flops_per_token"], "params": setup["params"],
          "seconds": compare.curve(run_dir)["seconds"]}


def run(config: ScaleConfig, workdir: str | os.PathLike, *, quiet: bool = False) -> dict:
  config.validate()
  workdir = storage.path(workdir)
  data_dir = compare.resolve_data_dir(_as_compare(config)) if config.task_list() else None
  points: list[dict] = []
  shared_tokenizer = None
  for variant in config.objective_list():
    for L, D, n in config.grid():
      run_config = point_config(config, variant, L, D, n)
      if shared_tokenizer is not None:
        run_config = replace_at(run_config, "data.tokenizer", str(shared_tokenizer))
      name = point_name(L, D, n)
      run_dir = workdir / "runs" / variant / name
      print(f"jaxlm scale: pre-training {variant} {name} ({run_config.steps} steps) in {run_dir}")
      run_config = train(run_config, run_dir, quiet=quiet)["config"]
      shared_tokenizer = shared_tokenizer or run_dir / "tokenizer.json"
      points.append({"variant": variant, "point": name, "layers": L, "width": D, "tokens": n,
                     "run_dir": str(run_dir), "config": run_config,
                     "non_embedding_params": non_embedding_params(run_config),
                     "curve": _learning_curve(run_dir),
                     "heldout": compare.heldout_quality(run_dir, run_config)})
  tok = tokenizer.load_file(shared_tokenizer)

  if config.zero_shot_list() and jax.process_count() == 1:
    ids = compare.train_ids(points[0]["config"], tok)
    for task in config.zero_shot_list():
      for p in points:
        print(f"jaxlm scale: {task} zero-shot for {p['variant']} {p['point']}")
        result = compare.zero_shot(task, p["run_dir"], config.blimp_per_paradigm, ids)
        p.setdefault("zero_shot", {})[task] = result
  elif config.zero_shot_list():
    print("jaxlm scale: zero-shot tasks run on one process; skipped here")

  for p in points:
    params = None
    for task in config.task_list():
      out = workdir / "finetune" / p["variant"] / p["point"] / task
      if (out / "results.json").exists():
        cached = json.loads((out / "results.json").read_text())
        if cached.get("recipe") == dataclasses.asdict(config.finetune):
          p.setdefault("finetune", {})[task] = cached
          continue
      print(f"jaxlm scale: fine-tuning {p['variant']} {p['point']} on {task}")
      if params is None:
        params = restore_params(p["run_dir"], sharding.make_mesh(p["config"].mesh))[1]
      start = time.perf_counter()
      result = finetune.run(p["config"], config.finetune, task, data_dir, out, params, tok,
                            init=p["run_dir"])
      result["seconds"] = time.perf_counter() - start
      p.setdefault("finetune", {})[task] = result

  summary = scale_report.summarize(config, points)
  if jax.process_index() == 0:
    storage.write_atomic(workdir / "scale.json", json.dumps(summary, indent=1))
    scale_report.write(summary, workdir)
  return summary


def _as_compare(config: ScaleConfig) -> compare.CompareConfig:
  """The fields `compare.resolve_data_dir` reads."""
  return compare.CompareConfig(pretrain=config.pretrain, tasks=config.tasks,
                               glue_dir=config.glue_dir)
