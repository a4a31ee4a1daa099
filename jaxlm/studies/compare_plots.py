"""The comparison report's plots (PNG, from `compare`'s summary): loss curves, each zero-shot
task by group, fine-tuning by variant with every seed, the learning curve with the probe, and
held-out bits per byte against FLOPs."""

from __future__ import annotations

import math

from etils import epath

from jaxlm.studies.plots import plt, save_png


def plot_bits_per_byte(summary: dict, out: epath.Path) -> str | None:
  """Held-out bits per byte against pre-training FLOPs at every learning-curve point, every
  objective on one axis; the line style says what each figure is."""
  curves = summary.get("learning_curve", {})
  if not curves:
    return None
  fig, ax = plt.subplots(figsize=(6, 4))
  styles = {"exact": "-", "bound": "--"}
  for name, points in curves.items():
    fpt = summary["variants"][name]["flops"] / max(summary["variants"][name]["tokens"], 1)
    points = [p for p in points if "bits_per_byte" in p["heldout"]]
    if points:
      kind = points[-1]["heldout"].get("bits_per_byte_kind", "exact")
      ax.plot([p["tokens"] * fpt for p in points],
              [p["heldout"]["bits_per_byte"] for p in points], styles.get(kind, ":"),
              marker="o", label=f"{name} ({kind})")
  ax.set_xscale("log")
  ax.set_xlabel("pre-training FLOPs")
  ax.set_ylabel("held-out bits per byte")
  ax.legend(fontsize=7)
  fig.tight_layout()
  save_png(fig, out / "bits_per_byte.png")
  return "bits_per_byte.png"


def plot_curves(summary: dict, out: epath.Path) -> list[str]:
  """Held-out loss at each kept checkpoint (the learning curve's points), the training loss
  thin beside it."""
  names = []
  for x_key, label in (("flops", "training FLOPs"), ("tokens", "training tokens")):
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, v in summary["variants"].items():
      line = ax.plot(v["curve"][x_key], v["curve"]["loss"], lw=0.8, alpha=0.5,
                     label=f"{name} (training)")
      points = summary.get("learning_curve", {}).get(name, [])
      if points:
        x = [p["tokens"] * (v["curve"]["flops_per_token"] if x_key == "flops" else 1)
             for p in points]
        ax.plot(x, [p["heldout"]["loss"] for p in points], "o-", color=line[0].get_color(),
                label=f"{name} (held-out)")
    ax.set_xlabel(label)
    ax.set_ylabel("loss (nats per predicted token)")
    ax.set_title("Pre-training loss by objective: held-out at kept checkpoints")
    ax.legend(fontsize=7)
    fig.tight_layout()
    name = f"loss_vs_{x_key}.png"
    save_png(fig, out / name)
    names.append(name)
  return names


def plot_zero_shot(task: str, result: dict, out: epath.Path) -> str:
  """Accuracy per group of a zero-shot task, per system, with the task's references."""
  phenomena = sorted({g for r in result.values() for g in r["groups"]})
  systems = list(result)
  fig, ax = plt.subplots(figsize=(12, 4.5))
  width = 0.8 / (len(systems) + 1)
  for i, name in enumerate(systems):
    r = result[name]
    values = [r["groups"].get(p, math.nan) for p in phenomena]
    intervals = [r["group_intervals"].get(p, [math.nan, math.nan]) for p in phenomena]
    err = [[v - lo for v, (lo, _) in zip(values, intervals)],
           [hi - v for v, (_, hi) in zip(values, intervals)]]
    ax.bar([k + i * width for k in range(len(phenomena))], values, width, yerr=err, capsize=2,
           label=name)
  references = next((r["references"] for r in result.values() if r.get("references")), {})
  for name, ref in list(references.items())[:1]:
    ax.bar([k + len(systems) * width for k in range(len(phenomena))],
           [ref["groups"].get(p, math.nan) for p in phenomena], width, color="0.7", label=name)
  ax.axhline(50, color="0.5", lw=0.8, ls=":")
  ax.set_xticks([k + 0.4 for k in range(len(phenomena))],
                [p.replace("_", "\n") for p in phenomena], fontsize=7)
  ax.set_ylabel(f"{task} accuracy (bars: 95% bootstrap interval)")
  ax.set_ylim(0, 100)
  ax.legend(fontsize=7, ncol=3)
  fig.tight_layout()
  save_png(fig, out / f"{task}.png")
  return f"{task}.png"


def plot_finetune(summary: dict, out: epath.Path) -> str | None:
  cells = [(task, split) for task in summary["tasks"] for split in
           next((per[task]["summary"] for per in summary["finetune"].values() if task in per), {})]
  if not cells:
    return None
  variants = list(summary["finetune"])
  fig, ax = plt.subplots(figsize=(2 + 2 * len(cells), 4))
  width = 0.8 / len(variants)
  seeds_all: list[float] = []
  for i, name in enumerate(variants):
    means, low, high, seeds_x, seeds_y = [], [], [], [], []
    for k, (task, split) in enumerate(cells):
      result = summary["finetune"][name][task]
      score = result["summary"][split]["score"]
      means.append(score["mean"])
      low.append(score["mean"] - score["min"])
      high.append(score["max"] - score["mean"])
      for s in result["seeds"]:
        seeds_x.append(k + i * width)
        seeds_y.append(s["metrics"][split]["score"])
    # Points, not bars: the axis starts near the scores, where a bar's length would mislead.
    ax.errorbar([k + i * width for k in range(len(cells))], means, yerr=[low, high], fmt="D",
                capsize=3, label=name)
    ax.scatter(seeds_x, seeds_y, s=8, color="k", alpha=0.6, zorder=3)
    seeds_all += seeds_y
  ax.set_xticks([k + width * (len(variants) - 1) / 2 for k in range(len(cells))],
                [f"{t}\n{s}" for t, s in cells], fontsize=8)
  # An axis that shows the differences (they are a point or two), not one from 0.
  shown = [y for y in seeds_all if math.isfinite(y)]
  if shown:
    pad = max(1.0, 0.1 * (max(shown) - min(shown)))
    ax.set_ylim(min(shown) - pad, max(shown) + pad)
  ax.set_ylabel("score (mean; bars: min-max over seeds;\ndots: seeds)")
  ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
  fig.tight_layout()
  save_png(fig, out / "finetune.png")
  return "finetune.png"


def probe_of(points: list[dict]) -> tuple[str, str] | None:
  return next(((p["probe"]["task"], p["probe"]["split"]) for p in points if "probe" in p), None)


def random_probe(summary: dict, name: str, task: str, split: str) -> float | None:
  """The probe of a randomly initialised model of `name`'s shape (compare's references)."""
  probed = summary.get("references", {}).get(task, {}).get("probe", {}).get(name)
  return probed["random"][split]["score"] if probed else None


def plot_learning_curve(summary: dict, out: epath.Path) -> str:
  curves = summary["learning_curve"]
  tasks_ = sorted({t for points in curves.values() for p in points for t in p["zero_shot"]})
  probed = next((probe_of(points) for points in curves.values() if probe_of(points)), None)
  panels = 1 + len(tasks_) + bool(probed)
  fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
  for name, points in curves.items():
    tokens = [p["tokens"] for p in points]
    line, = axes[0][0].plot(tokens, [p["heldout"]["loss"] for p in points], "o-", label=name)
    for ax, task in zip(axes[0][1:], tasks_):
      values = [p["zero_shot"][task] for p in points]
      ax.errorbar(tokens, [v["overall"] for v in values],
                  yerr=[[v["overall"] - v["interval"][0] for v in values],
                        [v["interval"][1] - v["overall"] for v in values]],
                  fmt="o-", capsize=3, label=name)
    if probed:
      ax = axes[0][-1]
      ax.plot([p["tokens"] for p in points if "probe" in p],
              [p["probe"]["score"] for p in points if "probe" in p], "o-", label=name,
              color=line.get_color())
      level = random_probe(summary, name, *probed)
      if level is not None:
        ax.axhline(level, color=line.get_color(), ls=":", label=f"{name}, random-init")
  for ax, task in zip(axes[0][1:], tasks_):
    references = next(p["zero_shot"][task]["references"] for points in curves.values()
                      for p in points if task in p["zero_shot"])
    for (ref, level), style in zip(references.items(), (":", "--", "-.")):
      ax.axhline(level, color="0.5", ls=style, label=ref)
    ax.set_ylabel(f"{task} accuracy, subset (95% intervals)")
  if probed:
    axes[0][-1].set_ylabel(f"frozen-feature probe, {probed[0]} {probed[1]}")
  axes[0][0].set_ylabel("held-out loss (each objective's own)")
  for ax in axes[0]:
    ax.set_xscale("log")
    ax.set_xlabel("pre-training tokens seen")
    ax.legend(fontsize=7)
  fig.tight_layout()
  save_png(fig, out / "learning_curve.png")
  return "learning_curve.png"
