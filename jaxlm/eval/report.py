"""The comparison report: report.md tables and PNG plots from `compare`'s summary."""

from __future__ import annotations

import io
import os

import matplotlib
from etils import epath

from jaxlm import storage

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def _glue_rows(summary: dict) -> list[str]:
  tasks = summary["tasks"]
  header = "| variant | " + " | ".join(tasks) + " | average |"
  rows = [header, "|---" * (len(tasks) + 2) + "|"]
  for name, per_task in summary["glue"].items():
    cells, medians = [], []
    for task in tasks:
      result = per_task.get(task)
      if result is None:
        cells.append("–")
        continue
      # MNLI reports matched and mismatched; the table shows the first dev split.
      score = next(iter(result["summary"].values()))["score"]
      medians.append(score["median"])
      cells.append(f"{score['median']:.1f} [{score['min']:.1f}–{score['max']:.1f}]")
    average = f"{sum(medians) / len(medians):.1f}" if len(medians) == len(tasks) else "–"
    rows.append(f"| {name} | " + " | ".join(cells) + f" | {average} |")
  return rows


def _pretrain_rows(summary: dict) -> list[str]:
  rows = ["| objective | params | tokens | FLOPs | held-out loss | accuracy | perplexity | "
          "bits/byte |", "|---|---|---|---|---|---|---|---|"]
  for name, v in summary["variants"].items():
    h = v["heldout"]
    ppl = f"{h['perplexity']:.1f}" if "perplexity" in h else "–"
    bpb = f"{h['bits_per_byte']:.3f}" if "bits_per_byte" in h else "–"
    rows.append(f"| {name} | {v['params']:,} | {v['tokens']:,} | {v['flops']:.3g} | "
                f"{h['loss']:.3f} | {100 * h['accuracy']:.1f}% | {ppl} | {bpb} |")
  return rows


def _save(fig, file: epath.Path) -> None:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=120)
  plt.close(fig)
  storage.write_atomic(file, buffer.getvalue())


def plot_curves(summary: dict, out: epath.Path) -> list[str]:
  names = []
  for x_key, label in (("tokens", "training tokens"), ("flops", "training FLOPs")):
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, v in summary["variants"].items():
      ax.plot(v["curve"][x_key], v["curve"]["loss"], label=name)
    ax.set_xlabel(label)
    ax.set_ylabel("training loss (nats per predicted token)")
    ax.set_title("Pre-training loss by objective")
    ax.legend()
    fig.tight_layout()
    name = f"loss_vs_{x_key}.png"
    _save(fig, out / name)
    names.append(name)
  return names


def plot_glue(summary: dict, out: epath.Path) -> str | None:
  if not summary["glue"]:
    return None
  tasks, variants = summary["tasks"], list(summary["glue"])
  fig, ax = plt.subplots(figsize=(1.5 + 1.5 * len(tasks), 4))
  width = 0.8 / len(variants)
  for i, name in enumerate(variants):
    medians, low, high = [], [], []
    for task in tasks:
      score = next(iter(summary["glue"][name][task]["summary"].values()))["score"]
      medians.append(score["median"])
      low.append(score["median"] - score["min"])
      high.append(score["max"] - score["median"])
    xs = [t + i * width for t in range(len(tasks))]
    ax.bar(xs, medians, width, yerr=[low, high], capsize=3, label=name)
  ax.set_xticks([t + width * (len(variants) - 1) / 2 for t in range(len(tasks))], tasks)
  ax.set_ylabel("dev score (median, bars: min-max over seeds)")
  ax.legend()
  fig.tight_layout()
  _save(fig, out / "glue.png")
  return "glue.png"


def write(summary: dict, out: str | os.PathLike) -> epath.Path:
  out = storage.path(out)
  curves = plot_curves(summary, out)
  glue_plot = plot_glue(summary, out)
  p = summary["pretrain_config"]
  m = p["model"]
  lines = [
    "# jaxlm objective comparison", "",
    f"Variants differ only in objective: same data (`{p['data']['source']}`), tokenizer, model "
    f"(D={m['embed_dim']}, L={m['num_layers']}, H={m['num_heads']}, T={p['seq_len']}), "
    f"{p['steps']} steps of {p['batch_size']} sequences, lr {p['optimizer']['lr']} "
    f"({p['optimizer']['schedule']}), seed {p['seed']}.", "",
    "## Pre-training", "", *_pretrain_rows(summary), "",
    "Held-out metrics are each objective's own (MLM: masked tokens at "
    f"{p['mlm']['mask_rate']:.0%}; CLM: next token; prefix-LM: continuation tokens), so losses "
    "compare across steps and FLOPs within an objective, not across objectives.", "",
    *[f"![{c}]({c})" for c in curves], "",
  ]
  if summary["glue"]:
    lines += ["## GLUE (dev)", "", *_glue_rows(summary), "",
              "Median [min–max] over fine-tuning seeds; scores on the 0–100 scale (MRPC/QQP: "
              "mean of F1 and accuracy; STS-B: mean of Pearson and Spearman; CoLA: MCC). "
              f"`{'none'}` is the same backbone fine-tuned without pre-training.", "",
              f"![GLUE]({glue_plot})", ""]
  else:
    lines += ["## GLUE", "", "Skipped: no GLUE data found (set `--config.glue_dir` or "
              "`$GLUE_DIR`).", ""]
  path = out / "report.md"
  storage.write_atomic(path, "\n".join(lines))
  return path
