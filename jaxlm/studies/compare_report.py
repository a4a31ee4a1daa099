"""The comparison report: report.md (tables, differences with 95% intervals, and in words what is
and is not significant) and PNG plots, from `compare`'s summary. report.json holds every number
shown here."""

from __future__ import annotations

import math
import os

from etils import epath

from jaxlm import storage
from jaxlm.eval import tasks
from jaxlm.studies.compare_plots import (
  plot_bits_per_byte,
  plot_curves,
  plot_finetune,
  plot_learning_curve,
  plot_zero_shot,
  probe_of,
  random_probe,
)
from jaxlm.studies.results import format_interval


def _bpb_cell(h: dict) -> str:
  """Held-out bits per byte, marked for what it is: exact, a bound (≤), or a masked-token
  cross-entropy (in parentheses: not a sequence likelihood)."""
  if "bits_per_byte" not in h:
    return "–"
  kind = h.get("bits_per_byte_kind", "exact")
  value = f"{h['bits_per_byte']:.3f}"
  return {"exact": value, "bound": f"≤ {value}"}.get(kind, f"({value}, masked-token)")


BPB_NOTE = ("Bits per byte is the held-out loss in bits over the held-out text's mean UTF-8 "
            "bytes per token, for every objective and labelled for what it is: exact for CLM "
            "and prefix-LM continuations (a sequence likelihood), an upper bound (≤) for `mdlm` "
            "(its negative ELBO), and in parentheses a masked-token cross-entropy at the mask "
            "rate for MLM-style objectives (`mlm`, `mntp`, the masked rows of `hybrid`), which "
            "is not a sequence likelihood and is not comparable with the others.")


def _pretrain_rows(summary: dict) -> list[str]:
  rows = ["| objective | params | tokens | FLOPs | minutes | held-out loss | accuracy | row-mode "
          "baseline | unigram baseline | accuracy / row-mode | perplexity | bits/byte |",
          "|---" * 12 + "|"]
  for name, v in summary["variants"].items():
    h = v["heldout"]
    ppl = (f"{h['perplexity']:.1f}" if "perplexity" in h else
           f"≤ {h['perplexity_bound']:.1f} (bound)" if "perplexity_bound" in h else "–")
    bpb = _bpb_cell(h)
    rows.append(
      f"| {name} | {v['params']:,} | {v['tokens']:,} | {v['flops']:.3g} | "
      f"{v['seconds'] / 60:.1f} | {h['loss']:.3f} | {100 * h['accuracy']:.1f} ± "
      f"{100 * h['accuracy_halfwidth']:.1f}% | {100 * h['row_mode_baseline']:.1f}% | "
      f"{100 * h['unigram_baseline']:.1f}% | {h['accuracy'] / h['row_mode_baseline']:.2f} | "
      f"{ppl} | {bpb} |")
  for name, v in summary["variants"].items():
    h = v["heldout"]
    if "nsp_accuracy" in h:
      rows += ["", f"{name} next-sentence prediction, held-out: accuracy "
               f"{100 * h['nsp_accuracy']:.1f} ± {100 * h['nsp_accuracy_halfwidth']:.1f}% "
               f"(chance 50%), loss {h['nsp_loss']:.3f} (chance {math.log(2):.3f}); its held-out "
               "loss above is the masked-token part."]
  return rows


def _finetune_rows(summary: dict) -> list[str]:
  rows = ["| task | split | variant | mean over seeds [min–max] | seeds | failed seeds |",
          "|---|---|---|---|---|---|"]
  for variant, per_task in summary["finetune"].items():
    for task, result in per_task.items():
      failed = len(result.get("failed_seeds", []))
      for split, metrics in result["summary"].items():
        score = metrics["score"]
        rows.append(f"| {task} | {split} | {variant} | {score['mean']:.1f} "
                    f"[{score['min']:.1f}–{score['max']:.1f}] | {len(result['seeds'])} | "
                    f"{failed or '–'} |")
  return rows


def _reference_rows(summary: dict) -> list[str]:
  """Per fine-tuning task: the same-data bag-of-words references and each run's frozen-feature
  probe beside a random model's, on every scored split."""
  rows = []
  for task, found in summary.get("references", {}).items():
    splits = list(found["bag_of_words"]["words"])
    rows += [f"{task}, {found['train_examples']:,} training examples (the fine-tuned arms' own):",
             "", "| reference | " + " | ".join(splits) + " |", "|---" * (len(splits) + 1) + "|"]
    for kind, label in (("words", "bag of words: words"), ("pieces", "bag of words: the runs' "
                                                          "pieces")):
      if kind in found["bag_of_words"]:
        rows.append(f"| {label} | " + " | ".join(
          f"{found['bag_of_words'][kind][s]['score']:.1f}" for s in splits) + " |")
    for name, probed in found["probe"].items():
      for which in ("pretrained", "random"):
        label = f"linear probe, {name} {'frozen' if which == 'pretrained' else 'random-init'} " \
                f"features ({probed['readout']} token)"
        rows.append(f"| {label} | " + " | ".join(
          f"{probed[which][s]['score']:.1f}" for s in splits) + " |")
    rows.append("")
  return rows


def _grouped(summary: dict) -> dict[tuple, dict[str, dict]]:
  """The report's differences by (task, split, a, b), each with its interval over seeds and
  over examples where it has them."""
  groups: dict[tuple, dict[str, dict]] = {}
  for r in summary["comparisons"]:
    groups.setdefault((r["task"], r.get("split"), r["a"], r["b"]), {})[r["over"]] = r
  return groups


def _difference_rows(summary: dict) -> list[str]:
  several = summary.get("pretrain_seeds", 1) > 1
  rows = ["| task | split | difference | over seeds (paired t, 95%) | Holm p | over examples, "
          "first seed (paired bootstrap, 95%) | Holm p | "
          + ("over pre-training seeds (paired t, 95%) | Holm p | " if several else "")
          + "seed ranges apart |", "|---" * (10 if several else 8) + "|"]

  def cells(r: dict | None) -> str:
    if r is None:
      return "– | –"
    p = r.get("adjusted_p")
    return f"{format_interval(r['interval'])} | {'–' if p is None else f'{p:.3g}'}"

  for (task, split, a, b), by in _grouped(summary).items():
    apart = {True: "yes", False: "no", None: "–"}[by.get("seeds", {}).get("beyond_seed_range")]
    pre = f"{cells(by.get('pretraining seeds'))} | " if several else ""
    rows.append(f"| {task} | {split or '–'} | {a} − {b} | {cells(by.get('seeds'))} | "
                f"{cells(by.get('examples'))} | {pre}{apart} |")
  return rows


def _words(summary: dict) -> list[str]:
  """One sentence per comparison: whether its intervals exclude zero."""
  lines = []
  for (task, split, a, b), by in _grouped(summary).items():
    where = task + (f" ({split})" if split else "")
    parts = []
    for key, label in (("seeds", "across seeds"), ("examples", "across examples"),
                       ("pretraining seeds", "across pre-training seeds")):
      if key in by:
        if any(map(math.isnan, by[key]["interval"][1:])):
          parts.append(f"no interval {label}")
        else:
          parts.append(("significant" if by[key]["significant"] else "not significant")
                       + f" {label} (Holm p {by[key]['adjusted_p']:.3g})"
                       if by[key].get("adjusted_p") is not None else
                       ("interval excludes 0" if by[key]["significant"] else
                        "interval includes 0") + f" {label}")
    estimate = by.get("seeds", by.get("examples", by.get("pretraining seeds")))["interval"][0]
    lines.append(f"- {where}: {a} scores {'higher' if estimate > 0 else 'lower'} than {b} by "
                 f"{abs(estimate):.1f} points; " + ", ".join(parts) + ".")
  for name, v in summary["variants"].items():
    h = v["heldout"]
    ratio = h["accuracy"] / h["row_mode_baseline"]
    low = (h["accuracy"] - h["accuracy_halfwidth"]) / h["row_mode_baseline"]
    lines.append(f"- pre-training, {name}: held-out accuracy is {ratio:.2f}× the row-mode "
                 f"baseline (at least {low:.2f}× at the low end of its 95% interval).")
  return lines


def _targets(summary: dict) -> list[str]:
  """Whether the run shows learning, three checks stated as met or not met."""
  lines = []
  for name, v in summary["variants"].items():
    h = v["heldout"]
    low = h["accuracy"] - h["accuracy_halfwidth"]
    met = low >= 2 * h["row_mode_baseline"]
    lines.append(f"- {name} held-out accuracy at least twice the row-mode baseline "
                 f"({100 * h['accuracy']:.1f}% vs 2 × {100 * h['row_mode_baseline']:.1f}%): "
                 f"{'met' if met else 'not met'}.")
  baselines = set(summary.get("baselines", {}).values())
  references = {ref for per_run in summary["zero_shot"].values() for result in per_run.values()
                for ref in result.get("references", {})}
  for r in summary["comparisons"]:
    if (r["kind"] == "finetune" and r["b"] in baselines and r.get("split") == "test"
        and r["over"] == "seeds"):
      met = r["beyond_seed_range"] and r["interval"][0] > 0
      lines.append(f"- {r['a']} beats `{r['b']}` (untrained, same attention) on {r['task']} "
                   f"test beyond the seed spread: {'met' if met else 'not met'} "
                   f"({r['interval'][0]:+.1f} points).")
    if r["kind"] == "probe" and r.get("split") == "test":
      met = r["significant"] and r["interval"][0] > 0
      lines.append(f"- {r['a']} beat {r['b']} (same shape) in a linear probe on "
                   f"{r['task']} test (after Holm): {'met' if met else 'not met'} "
                   f"({format_interval(r['interval'])}).")
    if r["kind"] == "zero_shot" and r["b"] in references:
      met = r["significant"] and r["interval"][0] > 0
      lines.append(f"- {r['a']} above the {r['b']} reference on {r['task']} (after Holm): "
                   f"{'met' if met else 'not met'} ({format_interval(r['interval'])}).")
  return lines


def _curve_rows(summary: dict) -> list[str]:
  curves = summary.get("learning_curve", {})
  tasks_ = sorted({t for points in curves.values() for p in points for t in p["zero_shot"]})
  refs = sorted({r for points in curves.values() for p in points for t in p["zero_shot"].values()
                 for r in t["references"]})
  probed = next((probe_of(points) for points in curves.values() if probe_of(points)), None)
  probe_head = [f"probe, {probed[0]} {probed[1]}"] if probed else []
  rows = ["| variant | step | tokens seen | held-out loss | bits/byte | "
          + " | ".join([f"{t} (subset)" for t in tasks_] + probe_head) + " |",
          "|---" * (5 + len(tasks_) + len(probe_head)) + "|"]
  for name, points in curves.items():
    for p in points:
      h = p["heldout"]
      bpb = _bpb_cell(h)
      cells = [format_interval([p["zero_shot"][t]["overall"], *p["zero_shot"][t]["interval"]],
                               signed=False) if t in p["zero_shot"] else "–" for t in tasks_]
      if probed:
        cells.append(f"{p['probe']['score']:.1f}" if "probe" in p else "–")
      rows.append(f"| {name} | {p['step']} | {p['tokens']:,} | {h['loss']:.3f} | {bpb} | "
                  + " | ".join(cells) + " |")
  for ref in refs:
    cells = []
    for t in tasks_:
      levels = [p["zero_shot"][t]["references"][ref] for points in curves.values() for p in points
                if ref in p["zero_shot"].get(t, {}).get("references", {})]
      cells.append(f"{levels[0]:.1f}" if levels else "–")
    rows.append(f"| {ref}, fitted on the whole training text | – | – | – | – | "
                + " | ".join(cells + ["–"] * len(probe_head)) + " |")
  if probed:
    for name in curves:
      level = random_probe(summary, name, *probed)
      if level is not None:
        rows.append(f"| {name}, random-init features (same shape) | – | – | – | – | "
                    + " | ".join(["–"] * len(tasks_) + [f"{level:.1f}"]) + " |")
  return rows


def zero_shot_section(task: str, results: dict[str, dict], out: epath.Path) -> list[str]:
  """A zero-shot task's section: its own rendering of every system's result, and a plot."""
  return [f"## {task} (zero-shot)", "", *tasks.get(task, "zero_shot").render(results), "",
          f"![{task}]({plot_zero_shot(task, results, out)})", ""]


def write(summary: dict, out: str | os.PathLike) -> epath.Path:
  out = storage.path(out)
  curves = plot_curves(summary, out)
  p = summary["pretrain_config"]
  m = p["model"]
  f = summary["finetune_recipe"]
  minutes = sum(v["seconds"] for v in summary["variants"].values()) / 60
  lines = [
    "# jaxlm objective comparison", "",
    f"Variants differ only in objective and its options: same data (`{p['data']['source']}`), tokenizer "
    f"(V={p['data'].get('vocab_size', m['vocab_size'])}), model (D={m['embed_dim']}, "
    f"L={m['num_layers']}, "
    f"H={m['num_heads']}, T={p['seq_len']}), {p['steps']} steps of {p['batch_size']} sequences, "
    f"lr {p['optimizer']['lr']} ({p['optimizer']['schedule']}), "
    + (f"pre-training seeds {p['seed']}..{p['seed'] + summary.get('pretrain_seeds', 1) - 1} "
       "(seed k > 0 runs as VARIANT-seedK)" if summary.get("pretrain_seeds", 1) > 1 else
       f"one pre-training seed ({p['seed']})") + "; MLM masks "
    f"{p['mlm']['mask_rate']:.0%} (mask token {p['mlm']['mask_token_prob']:.0%}, random "
    f"{p['mlm']['random_token_prob']:.0%}). Pre-training steps took {minutes:.1f} minutes in all "
    "(from the runs' logs).", "",
    *([f"**In-domain control** (self-pre-training, Krishna et al. 2022): every variant is "
       f"pre-trained on the training texts of `{summary['in_domain']}` alone (never its "
       "validation or test texts), then fine-tuned on the tasks below as usual.", ""]
      if summary.get("in_domain") else []),
    *([("Variants: " + "; ".join(f"`{k}`: {v}" for k, v in
                                 summary["variant_descriptions"].items()) + ".")]
      if "variant_descriptions" in summary else []), "",
    "## What is and is not significant", "",
    f"The report makes {len(summary['comparisons'])} comparisons (each line below is one pair "
    "of arms, over seeds and over examples where it has both). \"Significant\" means at the 5% "
    "level after Holm's correction for all of them together (Holm 1979: the chance of any false "
    "claim in the report stays under 5%); the 95% intervals in the tables are each "
    "difference's own, uncorrected.", "", *_words(summary), "",
    "## Does it learn?", "", *_targets(summary), "",
    "## Pre-training", "", *_pretrain_rows(summary), "",
    "Held-out metrics are each objective's own (MLM: masked tokens; CLM: next token; prefix-LM: "
    "continuation tokens), so losses compare across steps and FLOPs within an objective, not "
    "across objectives. Accuracy ± its 95% binomial half-width over the predicted tokens. The "
    "baselines predict without context: the training text's most frequent token (unigram) and "
    "each held-out row's own most frequent token (row-mode, which peeks at the row); an MLM on "
    "the unigram plateau scores about the row-mode baseline.", "", BPB_NOTE, "",
    *[f"![{c}]({c})" for c in curves], "",
  ]
  for task, result in summary["zero_shot"].items():
    lines += zero_shot_section(task, result, out)
  if summary.get("learning_curve"):
    lines += ["## Learning curve (by tokens seen)", "", *_curve_rows(summary), "",
              "At each token milestone a run kept (`pretrain.checkpoint_tokens`) and at its end: "
              "held-out loss and bits per byte (every held-out row), and each zero-shot task on a "
              "fixed subset (the same items at every point) with a 95% bootstrap interval over "
              "them. The references are fitted on the whole training text, so early points are "
              "measured against what the full text allows. The probe is the frozen-feature "
              "linear probe of the fine-tuning references (same examples, read-out and "
              "cross-validation) on each checkpoint, beside the same probe on a randomly "
              "initialised model of the variant's shape.", "",
              f"![learning curve]({plot_learning_curve(summary, out)})", ""]
    bpb_plot = plot_bits_per_byte(summary, out)
    if bpb_plot:
      lines += [f"![bits per byte]({bpb_plot})", ""]
  if summary["finetune"]:
    plot = plot_finetune(summary, out)
    lines += ["## Fine-tuning", "", *_finetune_rows(summary), "",
              f"One recipe for every variant: lr {f['lr']}, batch {f['batch_size']}, "
              f"{f['epochs']} epochs, at most {f['max_train_examples'] or 'all'} training "
              f"examples, sequences of {f['max_seq_len']}; {f['seeds']} seeds. Scores 0–100 "
              "(accuracy; GLUE tasks their GLUE score). `none` is the same backbone fine-tuned "
              "without pre-training, bidirectional and read at [CLS] (what MLM and prefix-LM "
              "fine-tune with); `none_causal` the same, causal and read at the last token (what "
              "CLM fine-tunes with): each variant is compared with the untrained arm of its own "
              "attention. A seed that predicts one class for every example is marked failed and "
              "left out of the means and of the differences.", ""]
    if plot:
      lines += [f"![fine-tuning]({plot})", ""]
  if summary.get("references"):
    lines += ["### Measured against", "", *_reference_rows(summary),
              "What the fine-tuning scores above are measured against, on exactly the training "
              "examples the arms see: a logistic regression on bag-of-words counts (words; the "
              "runs' own tokenizer pieces), and a logistic regression on each pre-trained "
              "model's frozen features (the token its fine-tuning reads) beside the same probe of "
              "a randomly initialised model of the same shape. Regularisation by 5-fold "
              "cross-validation on the training split only; scores 0–100 with the task's "
              "metric. A fine-tuned model that scores about the bag of words has used little "
              "beyond word identity; frozen features that score like random ones carry no more "
              "about the task than the architecture does.", ""]
  lines += ["## Differences", "", *_difference_rows(summary), "",
            "`seed ranges apart`: every seed of one side beats every seed of the other.", ""]
  path = out / "report.md"
  storage.write_atomic(path, "\n".join(lines))
  return path
