"""The scaling report: power-law fits per objective, the compute-efficient frontier, downstream
quality against FLOPs, matched-size differences between objectives, in words and plots.

Everything is computed from the grid points `scale.run` gathers, so `summarize` is also what
tests call on synthetic points. Held-out losses of different objectives measure different
things (masked tokens vs next tokens): they are compared through their exponents and through
downstream scores, never by their values.
"""

from __future__ import annotations

import math
import os

import numpy as np
from etils import epath
from scipy import stats as scipy_stats

from jaxlm import stats, storage
from jaxlm.studies import power_law
from jaxlm.studies.plots import plt, save_png
from jaxlm.studies.results import (
  Difference,
  finetune_differences,
  format_interval,
  headline_split,
  holm,
  zero_shot_difference,
)

SKIP_FRAC = 0.25  # the first quarter of each learning curve (warmup, steepest descent) is left out


def _score(result: dict) -> tuple[str, dict]:
  """A fine-tuning result's headline split and its score summary."""
  split = headline_split(result)
  return split, result["summary"][split]["score"]


def _trend(x: list[float], y: list[float]) -> dict | None:
  """Least-squares slope of y per decade of x, with its 95% t-interval (n - 2 df)."""
  if len(x) < 3:
    return None
  fit = scipy_stats.linregress(np.log10(x), y)
  t = scipy_stats.t.ppf(0.975, len(x) - 2)
  return {"slope_per_decade": float(fit.slope),
          "interval": [float(fit.slope - t * fit.stderr), float(fit.slope + t * fit.stderr)],
          "points": len(x)}


def _mean_over_seeds(pts: list[dict]) -> list[dict]:
  """One point per grid point: with several pre-training seeds, their held-out curves, final
  held-out loss and downstream scores averaged (the runs of a point share steps and FLOPs)."""
  by_point: dict[str, list[dict]] = {}
  for p in pts:
    by_point.setdefault(p["point"], []).append(p)
  out = []
  for same in by_point.values():
    if len(same) == 1:
      out.append(same[0])
      continue
    first = same[0]
    curve = dict(first["curve"], loss=np.mean([q["curve"]["loss"] for q in same], 0).tolist())
    heldout = dict(first["heldout"], **{key: float(np.mean([q["heldout"][key] for q in same]))
                                        for key in ("loss", "bits_per_byte")
                                        if all(key in q["heldout"] for q in same)})
    scores = {task: dict(s, mean=float(np.mean([q["scores"][task]["mean"] for q in same])))
              for task, s in first["scores"].items() if all(task in q["scores"] for q in same)}
    out.append(dict(first, curve=curve, heldout=heldout, scores=scores, seeds=len(same)))
  return out


def _objective_summary(pts: list[dict], task_names: list[str]) -> dict:
  pts = _mean_over_seeds(pts)
  xs, ys, owner = [], [], []
  for i, p in enumerate(pts):
    c = p["curve"]
    last = c["steps"][-1] if c["steps"] else 0
    for step, flops, loss in zip(c["steps"], c["flops"], c["loss"]):
      if step >= SKIP_FRAC * last:
        xs.append(flops)
        ys.append(loss)
        owner.append(i)
  frontier = power_law.lower_envelope(xs, ys) if xs else np.zeros(0, np.int64)
  out: dict = {"frontier": [
    {"flops": xs[k], "loss": ys[k], "point": pts[owner[k]]["point"],
     "tokens_per_param": xs[k] / pts[owner[k]]["curve"]["flops_per_token"]
     / pts[owner[k]]["non_embedding_params"]} for k in frontier]}
  if len(frontier) >= 3:
    out["fit_compute"] = power_law.fit([xs[k] for k in frontier],
                                       [ys[k] for k in frontier]).to_dict()
  out["fit_params"] = {}
  for n in sorted({p["tokens"] for p in pts}):
    at_n = [p for p in pts if p["tokens"] == n]
    if len(at_n) >= 3:
      out["fit_params"][str(n)] = power_law.fit([p["non_embedding_params"] for p in at_n],
                                                [p["heldout"]["loss"] for p in at_n]).to_dict()
  out["trends"] = {}
  for task in task_names:
    have = [p for p in pts if task in p["scores"]]
    trend = _trend([p["flops"] for p in have], [p["scores"][task]["mean"] for p in have])
    if trend:
      out["trends"][task] = trend
  return out


def _point_scores(p: dict) -> dict:
  """Each downstream task's headline score for one point (0-100): BLiMP overall with its
  bootstrap interval; fine-tuning's mean over seeds with min and max."""
  scores = {}
  for task, r in p.get("zero_shot", {}).items():
    scores[task] = {"mean": r["overall"], "low": r["interval"][0], "high": r["interval"][1],
                    "kind": "zero_shot"}
  for task, r in p.get("finetune", {}).items():
    split, score = _score(r)
    scores[task] = {"mean": score["mean"], "low": score["min"], "high": score["max"],
                    "split": split, "kind": "finetune", "seeds": len(r["seeds"])}
  return scores


def _level_of(p: dict, task: str) -> float | None:
  """A point's headline score on `task`: zero-shot overall, or the fine-tuning mean."""
  return p["scores"][task]["mean"] if task in p.get("scores", {}) else None


def _matched_differences(points: list[dict], variants: list[str]) -> list[dict]:
  """First variant minus each other one at the same size and tokens, per downstream task:
  zero-shot over items (paired bootstrap), fine-tuning over seeds (paired t) on the headline
  split, both at the first pre-training seed; with several pre-training seeds, also over them
  (paired t over seed indices of the per-run scores). p-values Holm-corrected over all."""
  found: list[tuple[Difference, dict]] = []
  by_key = {(p["variant"], p["point"], p.get("seed", 0)): p for p in points}
  seeds = sorted({p.get("seed", 0) for p in points})
  for b_name in variants[1:]:
    for p in (q for q in points if q["variant"] == variants[0] and q.get("seed", 0) == 0):
      q = by_key.get((b_name, p["point"], 0))
      if q is None:
        continue
      where = {"point": p["point"], "flops_ratio": p["flops"] / q["flops"]}
      for task, ra in p.get("zero_shot", {}).items():
        if task in q.get("zero_shot", {}):
          found.append((zero_shot_difference(task, variants[0], b_name, ra["correct"],
                                             q["zero_shot"][task]["correct"]), where))
      for task, ra in p.get("finetune", {}).items():
        if task in q.get("finetune", {}):
          found += [(d, where) for d in finetune_differences(
            task, variants[0], b_name, ra, q["finetune"][task], [headline_split(ra)])
                    if d.over == "seeds"]
      for task in p.get("scores", {}):
        diffs = []
        for k in seeds:
          a, b = by_key.get((variants[0], p["point"], k)), by_key.get((b_name, p["point"], k))
          if a and b and _level_of(a, task) is not None and _level_of(b, task) is not None:
            diffs.append(_level_of(a, task) - _level_of(b, task))
        if len(diffs) >= 2:
          kind = p["scores"][task]["kind"]
          found.append((Difference(kind, task, variants[0], b_name, "pretraining seeds",
                                   stats.mean_ci(diffs), p["scores"][task].get("split")), where))
  corrected = holm([d for d, _ in found])
  return [{**d.to_json(), **where} for d, (_, where) in zip(corrected, found)]


def summarize(config, points: list[dict]) -> dict:
  """scale.json: every point (curve, held-out metrics, downstream scores) and every fit."""
  variants = list(config.objectives)
  tasks = list(config.zero_shot) + list(config.tasks)
  clean = []
  for p in points:
    q = {k: v for k, v in p.items() if k != "config"}
    q["flops"] = p["curve"]["flops_per_token"] * p["tokens"]
    q["params"] = p["curve"]["params"]
    q["scores"] = _point_scores(p)
    q["zero_shot"] = {t: {k: r[k] for k in ("overall", "interval", "correct", "items")
                          if k in r} | {"references": {name: ref["overall"] for name, ref in
                                                       r.get("references", {}).items()}}
                      for t, r in p.get("zero_shot", {}).items()}
    clean.append(q)
  return {
    "grid": {"objectives": variants, "depths": config.depths,
             "width_per_layer": config.width_per_layer, "head_dim": config.head_dim,
             "mlp_ratio": config.mlp_ratio, "tokens": config.tokens,
             "warmup_frac": config.warmup_frac, "curve_points": config.curve_points,
             "pretrain_seeds": config.pretrain_seeds,
             "zero_shot_sample": config.zero_shot_sample, "tasks": tasks},
    "pretrain_config": config.pretrain.to_dict(),
    "points": clean,
    "objectives": {v: _objective_summary([p for p in clean if p["variant"] == v], tasks)
                   for v in variants},
    "differences": _matched_differences(clean, variants),
  }


def _level(fit: dict, key: str, digits: int = 3) -> str:
  """A fitted value with its interval: "0.530 [0.320, 0.750]"."""
  return format_interval([fit[key], *fit[f"{key}_interval"]], signed=False, digits=digits)


def _fit_line(name: str, fit: dict | None, x_name: str) -> str:
  if not fit:
    return f"| {name} | {x_name} | – | – | – | fewer than 3 points |"
  return (f"| {name} | {x_name} | {_level(fit, 'alpha')} | {_level(fit, 'E')} | {fit['A']:.3g} | "
          f"{fit['points']} points, RMS log-residual {fit['rms_log_residual']:.4f} |")


def _words(summary: dict) -> list[str]:
  lines = []
  fits = {v: o.get("fit_compute") for v, o in summary["objectives"].items()}
  for v, fit in fits.items():
    if fit:
      lines.append(f"- {v}: held-out loss on the compute frontier falls as C^(−α) with "
                   f"α = {_level(fit, 'alpha')} (95%), towards E = {_level(fit, 'E', 2)}.")
    else:
      lines.append(f"- {v}: fewer than 3 frontier points; no compute law fitted.")
  have = [(v, f) for v, f in fits.items() if f and not math.isnan(f["alpha_interval"][0])]
  for i, (a, fa) in enumerate(have):
    for b, fb in have[i + 1:]:
      apart = fa["alpha_interval"][0] > fb["alpha_interval"][1] or \
        fb["alpha_interval"][0] > fa["alpha_interval"][1]
      lines.append(f"- Exponents {a} vs {b}: {fa['alpha']:.3f} vs {fb['alpha']:.3f}; their "
                   f"intervals {'do not overlap' if apart else 'overlap'}, so the grid "
                   f"{'does' if apart else 'does not'} tell their compute scaling apart.")
  for v, o in summary["objectives"].items():
    for task, t in o["trends"].items():
      lo, hi = t["interval"]
      sig = lo > 0 or hi < 0
      lines.append(f"- {v}, {task}: "
                   f"{format_interval([t['slope_per_decade'], lo, hi])} points per decade of "
                   f"FLOPs, {'significant' if sig else 'not significant'} "
                   f"({t['points']} points).")
  for r in summary["differences"]:
    if math.isnan(r["interval"][1]):
      sig = f"no interval over {r['over']}"
    else:
      sig = (("significant" if r["significant"] else "not significant") + f" over {r['over']} "
             f"(Holm p {r['adjusted_p']:.3g} over {len(summary['differences'])} differences)")
    lines.append(f"- {r['task']} at {r['point']}: {r['a']} − {r['b']} = "
                 f"{format_interval(r['interval'])}, {sig}; {r['a']} spent "
                 f"{r['flops_ratio']:.2f}× the FLOPs.")
  return lines


def _plot_loss(summary: dict, out: epath.Path) -> list[str]:
  variants = list(summary["objectives"])
  fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 4), squeeze=False)
  for ax, v in zip(axes[0], variants):
    pts = [p for p in summary["points"] if p["variant"] == v]
    for p in pts:
      ax.plot(p["curve"]["flops"], p["curve"]["loss"], lw=1, alpha=0.8, label=p["point"])
    o = summary["objectives"][v]
    if o["frontier"]:
      ax.scatter([f["flops"] for f in o["frontier"]], [f["loss"] for f in o["frontier"]],
                 color="k", s=12, zorder=3, label="frontier")
    if "fit_compute" in o:
      f = o["fit_compute"]
      c = np.logspace(np.log10(o["frontier"][0]["flops"]), np.log10(o["frontier"][-1]["flops"]))
      ax.plot(c, f["E"] + f["A"] * c ** -f["alpha"], "k--", lw=1,
              label=f"fit α={f['alpha']:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs")
    ax.set_ylabel(f"held-out loss ({v})")
    ax.legend(fontsize=7)
  fig.tight_layout()
  save_png(fig, out / "loss_vs_flops.png")
  fig, ax = plt.subplots(figsize=(5, 4))
  for v in variants:
    for n, f in summary["objectives"][v]["fit_params"].items():
      pts = [p for p in summary["points"] if p["variant"] == v and str(p["tokens"]) == n]
      x = np.array([p["non_embedding_params"] for p in pts], float)
      line = ax.plot(x, [p["heldout"]["loss"] for p in pts], "o", label=f"{v}, {int(n):,} tokens")
      grid = np.logspace(np.log10(x.min()), np.log10(x.max()))
      ax.plot(grid, f["E"] + f["A"] * grid ** -f["alpha"], "--", color=line[0].get_color(), lw=1)
  ax.set_xscale("log")
  ax.set_xlabel("non-embedding parameters")
  ax.set_ylabel("final held-out loss (own objective)")
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=7)
  fig.tight_layout()
  save_png(fig, out / "loss_vs_params.png")
  return ["loss_vs_flops.png", "loss_vs_params.png"]


def _plot_downstream(summary: dict, out: epath.Path) -> str | None:
  tasks = summary["grid"]["tasks"]
  if not tasks or not any(p["scores"] for p in summary["points"]):
    return None
  fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    for v in summary["objectives"]:
      pts = [p for p in summary["points"] if p["variant"] == v and task in p["scores"]]
      if not pts:
        continue
      s = [p["scores"][task] for p in pts]
      ax.errorbar([p["flops"] for p in pts], [x["mean"] for x in s],
                  yerr=[[max(x["mean"] - x["low"], 0) for x in s],
                        [max(x["high"] - x["mean"], 0) for x in s]],
                  fmt="o-", capsize=3, label=v)
    references = next((p["zero_shot"][task]["references"] for p in summary["points"]
                       if task in p.get("zero_shot", {})), {})
    for name, level in references.items():
      ax.axhline(level, color="0.5", ls=":", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("pre-training FLOPs")
    ax.set_ylabel(f"{task} score (bars: 95% interval or seed range)")
    ax.legend(fontsize=7)
  fig.tight_layout()
  save_png(fig, out / "downstream_vs_flops.png")
  return "downstream_vs_flops.png"


def write(summary: dict, out: str | os.PathLike) -> epath.Path:
  out = storage.path(out)
  g = summary["grid"]
  p = summary["pretrain_config"]
  plots = _plot_loss(summary, out)
  downstream = _plot_downstream(summary, out)
  minutes = sum(pt["curve"]["seconds"] for pt in summary["points"]) / 60
  lines = [
    "# jaxlm scaling report", "",
    f"Objectives {', '.join(g['objectives'])}; sizes L ∈ {{{', '.join(map(str, g['depths']))}}} layers with width "
    f"D = {g['width_per_layer']}·L, heads of {g['head_dim']}, MLP {g['mlp_ratio']}·D; token "
    f"budgets {', '.join(f'{n:,}' for n in g['tokens'])}; data `{p['data']['source']}`, tokenizer V={p['data']['vocab_size']} "
    f"(one, shared), T={p['seq_len']}, batch {p['batch_size']}, {p['optimizer']['schedule']} "
    f"schedule at lr {p['optimizer']['lr']} with {g['warmup_frac']:.0%} warmup, "
    + (f"pre-training seeds {p['seed']}..{p['seed'] + g.get('pretrain_seeds', 1) - 1} (each "
       "point at each seed; fits on each point's mean over them)"
       if g.get("pretrain_seeds", 1) > 1 else f"seed {p['seed']}") + "; "
    f"{g['curve_points']} held-out evaluations per run. Pre-training took {minutes:.1f} minutes "
    "(from the runs' logs).", "",
    "## What the grid shows", "", *_words(summary), "",
    "## Power laws L = E + A·x^(−α)", "",
    "| objective | x | α (95%) | E (95%) | A | fit |", "|---|---|---|---|---|---|",
  ]
  for v, o in summary["objectives"].items():
    lines.append(_fit_line(v, o.get("fit_compute"), "FLOPs (frontier)"))
    for n, f in o["fit_params"].items():
      lines.append(_fit_line(v, f, f"non-embedding params at {int(n):,} tokens"))
  lines += [
    "", "Least squares on log-loss from a grid of starts; 95% Wald intervals with Student t "
    "quantiles on n − 3 degrees of freedom (`jaxlm/studies/power_law.py`). The compute fit uses the "
    "lower envelope of all learning curves of the objective (held-out loss at each evaluation, "
    f"the first {SKIP_FRAC:.0%} of each run left out); the parameter fits use each run's final "
    "held-out loss over every held-out row. Losses are each objective's own (MLM: masked "
    "tokens; CLM: next token), so compare exponents, not levels.", "",
    *[f"![{x}]({x})" for x in plots], "",
    "## Compute-efficient frontier", "",
    "| objective | FLOPs | held-out loss | size on the frontier | tokens per non-embedding "
    "parameter |", "|---|---|---|---|---|",
  ]
  for v, o in summary["objectives"].items():
    for f in o["frontier"]:
      lines.append(f"| {v} | {f['flops']:.3g} | {f['loss']:.3f} | {f['point']} | "
                   f"{f['tokens_per_param']:.1f} |")
  lines += ["", "For reference, Hoffmann et al. (2022) find about 20 tokens per parameter "
            "compute-optimal for causal LMs far larger than these.", "",
            "## Grid points", "",
            "| objective | point | seed | params (non-embedding) | FLOPs | held-out loss | "
            "bits per byte | accuracy | " + " | ".join(g["tasks"]) + " |",
            "|---" * (8 + len(g["tasks"])) + "|"]
  for pt in summary["points"]:
    cells = []
    for task in g["tasks"]:
      s = pt["scores"].get(task)
      cells.append("–" if s is None else f"{s['mean']:.1f} [{s['low']:.1f}, {s['high']:.1f}]")
    h = pt["heldout"]
    lines.append(f"| {pt['variant']} | {pt['point']} | {pt.get('seed', 0)} | {pt['params']:,} "
                 f"({pt['non_embedding_params']:,}) | {pt['flops']:.3g} | {h['loss']:.3f} | "
                 f"{_bits_per_byte(h)} | {100 * h['accuracy']:.1f}% | " + " | ".join(cells) + " |")
  lines += ["", "Bits per byte: the held-out loss in bits over the held-out text's mean bytes "
            "per token; exact for CLM, a bound (≤) for MDLM, and for masked-token losses "
            "(marked *) a per-masked-token figure that is not the text's likelihood. Zero-shot "
            "scores: accuracy over minimal pairs with a 95% bootstrap interval over pairs; "
            "fine-tuning: mean over seeds [min, max], on the test split where the task has one.",
            ""]
  if downstream:
    lines += [f"![downstream]({downstream})", ""]
  path = out / "scale.md"
  storage.write_atomic(path, "\n".join(lines))
  return path


def _bits_per_byte(heldout: dict) -> str:
  """The held-out bits per byte, labelled by kind (runs.BPB_KINDS)."""
  value, kind = heldout.get("bits_per_byte"), heldout.get("bits_per_byte_kind", "exact")
  if value is None:
    return "–"
  return {"bound": f"≤ {value:.3f}", "masked-token": f"{value:.3f}*"}.get(kind, f"{value:.3f}")
