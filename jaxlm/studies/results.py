"""What a study measures, as typed, frozen results: a run's logged curve, its held-out quality,
and a difference between two arms with its interval. Each has `to_json()`: report.json and
scale.json hold exactly these, and the reports render from them.

One `difference` function serves both studies: fine-tuning arms are compared over seeds (a
paired t-interval: seed k of both arms shares the head's initialisation and data order) and,
for the first seed, over examples; zero-shot arms over items (a paired bootstrap).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Literal

import numpy as np
from etils import epath

from jaxlm import stats


@dataclasses.dataclass(frozen=True)
class Curve:
  """A run's training log: the training-loss curve and the held-out evaluations, read once."""

  steps: tuple[int, ...]
  tokens: tuple[int, ...]
  loss: tuple[float, ...]
  eval_steps: tuple[int, ...]
  eval_loss: tuple[float, ...]
  flops_per_token: float
  params: int
  seconds: float  # time in training steps, from the log (a resumed run reports its own time)

  @classmethod
  def read(cls, run_dir: epath.Path) -> Curve:
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    setup = next(e for e in events if e["split"] == "setup")
    train = {e["step"]: e for e in events if e["split"] == "train"}
    evals = {e["step"]: e for e in events if e["split"] == "eval"}  # the last of a step wins
    steps = sorted(train)
    seconds = sum(train[s]["step_time"] * (s - before)
                  for before, s in zip([0] + steps[:-1], steps))
    return cls(steps=tuple(steps), tokens=tuple(train[s]["tokens_seen"] for s in steps),
               loss=tuple(train[s]["loss"] for s in steps), eval_steps=tuple(sorted(evals)),
               eval_loss=tuple(evals[s]["loss"] for s in sorted(evals)),
               flops_per_token=setup["flops_per_token"], params=setup["params"],
               seconds=seconds)

  @property
  def tokens_per_step(self) -> float:
    return self.tokens[-1] / self.steps[-1]

  def to_json(self) -> dict[str, Any]:
    """The training-loss curve, by step, tokens and FLOPs."""
    return {"steps": list(self.steps), "tokens": list(self.tokens), "loss": list(self.loss),
            "flops": [t * self.flops_per_token for t in self.tokens],
            "flops_per_token": self.flops_per_token, "params": self.params,
            "seconds": self.seconds}

  def heldout_json(self) -> dict[str, Any]:
    """The held-out learning curve (the scaling fits' input), by step, tokens and FLOPs."""
    tokens = [s * self.tokens_per_step for s in self.eval_steps]
    return {"steps": list(self.eval_steps), "tokens": tokens,
            "flops": [t * self.flops_per_token for t in tokens], "loss": list(self.eval_loss),
            "flops_per_token": self.flops_per_token, "params": self.params,
            "seconds": self.seconds}


@dataclasses.dataclass(frozen=True)
class HeldoutQuality:
  """Held-out metrics over every held-out row, beside two context-free baselines.

  `loss` and `accuracy` are the objective's own (MLM: masked tokens; CLM: next token); for an
  objective with extra terms (NSP) `loss` is the part comparable with its plain objective and
  `extra` holds the rest. Perplexity and bits per byte where the objective is a likelihood."""

  loss: float
  accuracy: float
  accuracy_halfwidth: float  # 95% binomial half-width over the predicted tokens
  predicted_tokens: int
  unigram_baseline: float
  row_mode_baseline: float
  perplexity: float | None = None
  bits_per_byte: float | None = None
  extra: dict[str, float] = dataclasses.field(default_factory=dict)

  def to_json(self) -> dict[str, Any]:
    out = {k: v for k, v in dataclasses.asdict(self).items() if k != "extra" and v is not None}
    return {**out, **self.extra}

  @classmethod
  def from_json(cls, found: dict[str, Any]) -> HeldoutQuality:
    """The inverse of `to_json`."""
    fields = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    return cls(**{k: v for k, v in found.items() if k in fields},
               extra={k: v for k, v in found.items() if k not in fields})


@dataclasses.dataclass(frozen=True)
class Difference:
  """a − b on one task, in points (0-100), with its 95% interval `over` seeds, examples or
  items and its two-sided p-value; `adjusted_p` is that p after Holm's correction over every
  difference of the report (`holm`). Seed differences also carry both arms' seed ranges;
  differences over examples carry the per-example scores (`items`, a − b's two arrays) and the
  bootstrap's resamples, which `holm` raises where the family needs a smaller p."""

  kind: Literal["finetune", "zero_shot", "probe"]
  task: str
  a: str
  b: str
  over: Literal["seeds", "examples", "pretraining seeds"]
  interval: stats.Interval
  split: str | None = None
  a_range: tuple[float, float] | None = None
  b_range: tuple[float, float] | None = None
  adjusted_p: float | None = None
  resamples: int | None = None
  items: tuple[np.ndarray, np.ndarray] | None = dataclasses.field(default=None, repr=False,
                                                                  compare=False)

  @property
  def significant(self) -> bool:
    """At the 5% level after Holm's correction, where it was applied; else whether the 95%
    interval excludes zero."""
    if self.adjusted_p is not None:
      return bool(self.adjusted_p <= 0.05)
    return self.interval.excludes_zero()

  @property
  def beyond_seed_range(self) -> bool | None:
    if self.a_range is None:
      return None
    return bool(self.a_range[0] > self.b_range[1] or self.a_range[1] < self.b_range[0])

  def to_json(self) -> dict[str, Any]:
    out = {"kind": self.kind, "task": self.task, "a": self.a, "b": self.b, "over": self.over,
           "interval": list(self.interval), "p_value": self.interval.p_value,
           "adjusted_p": self.adjusted_p, "significant": self.significant,
           "interval_excludes_zero": self.interval.excludes_zero()}
    if self.split is not None:
      out["split"] = self.split
    if self.resamples is not None:
      out["bootstrap_resamples"] = self.resamples
    if self.a_range is not None:
      out |= {"a_range": list(self.a_range), "b_range": list(self.b_range),
              "beyond_seed_range": self.beyond_seed_range}
    return out


def holm(differences: list[Difference]) -> list[Difference]:
  """The differences with Holm-adjusted p-values over all of them (one family: the report).
  A bootstrap p-value too coarse for the family's thresholds (`stats.resamples_for`: ten or
  fewer resamples beyond zero, and family · p above 0.05) is drawn again with enough."""
  family = sum(not math.isnan(d.interval.p_value) for d in differences)
  differences = [_resolved(d, family) for d in differences]
  adjusted = stats.holm([d.interval.p_value for d in differences])
  return [dataclasses.replace(d, adjusted_p=None if math.isnan(p) else float(p))
          for d, p in zip(differences, adjusted)]


def _resolved(d: Difference, family: int) -> Difference:
  if d.items is None:
    return d
  needed = stats.resamples_for(d.interval.p_value, family, d.resamples)
  if needed == d.resamples:
    return d
  return dataclasses.replace(d, interval=stats.paired_bootstrap_mean_diff(*d.items, needed),
                             resamples=needed)


def headline_split(result: dict) -> str:
  """A fine-tuning result's headline split: 'test' when it has one, else its first."""
  return "test" if "test" in result["summary"] else next(iter(result["summary"]))


def finetune_differences(task: str, a: str, b: str, ra: dict, rb: dict,
                         splits: list[str] | None = None) -> list[Difference]:
  """Fine-tuning results `ra` − `rb` (results.json of the same task and recipe), per split:
  over seeds, and over examples for the first seed when both recorded per-example outcomes."""
  out = []
  failed = set(ra.get("failed_seeds", [])) | set(rb.get("failed_seeds", []))
  for split in splits or list(ra["summary"]):
    # Seeds where either arm predicted one class are left out (unless none is left).
    sa = {s["seed"]: s["metrics"][split]["score"] for s in ra["seeds"] if s["seed"] not in failed}
    sb = {s["seed"]: s["metrics"][split]["score"] for s in rb["seeds"] if s["seed"] not in failed}
    if not sa or not sb:
      sa = {s["seed"]: s["metrics"][split]["score"] for s in ra["seeds"]}
      sb = {s["seed"]: s["metrics"][split]["score"] for s in rb["seeds"]}
    out.append(Difference("finetune", task, a, b, "seeds", stats.seed_spread_diff(sa, sb),
                          split, (min(sa.values()), max(sa.values())),
                          (min(sb.values()), max(sb.values()))))
    ca, cb = ra["seeds"][0].get("correct", {}), rb["seeds"][0].get("correct", {})
    if split in ca and split in cb:
      out.append(items_difference("finetune", task, a, b, ca[split], cb[split], split))
  return out


def zero_shot_difference(task: str, a: str, b: str, correct_a, correct_b) -> Difference:
  return items_difference("zero_shot", task, a, b, correct_a, correct_b)


def items_difference(kind: str, task: str, a: str, b: str, correct_a, correct_b,
                     split: str | None = None) -> Difference:
  """a − b over items scored 0, ½ or 1, in points: a paired bootstrap
  (`stats.BOOTSTRAP_RESAMPLES`), its items kept for `holm`."""
  items = (np.asarray(correct_a) * 100.0, np.asarray(correct_b) * 100.0)
  return Difference(kind, task, a, b, "examples", stats.paired_bootstrap_diff(*items), split,
                    resamples=stats.BOOTSTRAP_RESAMPLES, items=items)


def format_interval(values, signed: bool = True, digits: int = 1) -> str:
  """The one way reports write an estimate with its interval: "+3.1 [+1.0, +5.2]"."""
  estimate, low, high = values
  interval = stats.Interval(float(estimate), float(low), float(high))
  return interval.format(digits=digits, signed=signed)


def nan_free(values) -> bool:
  return not any(math.isnan(v) for v in values)
