"""The sweep behind the CPU default of `jaxlm compare` (configs/compare/tiny.py).

Stage `pretrain`: MLM recipes at a fixed wall-clock-sized budget on the embedded corpus, picked
on held-out masked-token accuracy against the row-mode baseline (jaxlm.eval.mlm_baseline) and on
held-out loss; no evaluation set is looked at.

Stage `finetune`: fine-tuning recipes for the shipped task, on the pre-trained runs of one
`jaxlm compare` workdir (--from), every variant and the no-pre-training baseline; picked on the
validation split only (test is never printed here).

Each writes one JSON line per point to benchmarks/results/sweep_<stage>.jsonl and prints a
markdown table.

  python benchmarks/sweep_cpu_recipe.py pretrain --workdir /tmp/sweep
  python benchmarks/sweep_cpu_recipe.py finetune --workdir /tmp/sweep-ft --from runs/compare
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from jaxlm.config import load_config
from jaxlm.studies.compare import heldout_quality
from jaxlm.train.loop import train

BASE = {"objective": "mlm", "eval_every": "0", "log_every": "50"}
# name -> overrides on configs/tiny.py; every point spends about the same tokens.
_MASK40 = {"mlm.mask_rate": "0.4", "mlm.mask_token_prob": "1.0", "mlm.random_token_prob": "0.0"}
PRETRAIN_POINTS = {
  "tiny-as-is": {"steps": "600"},
  "mask40-only": {"steps": "600", **_MASK40},
  "rope": {"steps": "600", "model.position": "rope"},
  "rope-mask40-only": {"steps": "600", "model.position": "rope", **_MASK40},
  "rope-mask40-only-lr3e-3": {"steps": "600", "model.position": "rope", **_MASK40,
                              "optimizer.lr": "3e-3", "optimizer.warmup_steps": "60"},
  "rope-mask30-v2048": {"steps": "600", "model.position": "rope", "mlm.mask_rate": "0.3",
                        "data.vocab_size": "2048"},
  "rope-lr3e-3": {"steps": "600", "model.position": "rope", "optimizer.lr": "3e-3",
                  "optimizer.warmup_steps": "60"},
  "rope-mask25": {"steps": "600", "model.position": "rope", "mlm.mask_rate": "0.25"},
  "rope-v2048": {"steps": "600", "model.position": "rope", "data.vocab_size": "2048"},
  "rope-mask30": {"steps": "600", "model.position": "rope", "mlm.mask_rate": "0.3"},
  "rope-mask40-only-b32": {"steps": "300", "batch_size": "32", "model.position": "rope",
                           **_MASK40},
}


def run_point(name: str, overrides: dict[str, str], workdir: Path) -> dict:
  config = load_config("tiny", {**BASE, **overrides})
  start = time.perf_counter()
  config = train(config, workdir / name.replace("/", "-"), quiet=True)["config"]
  wall = time.perf_counter() - start
  h = heldout_quality(workdir / name.replace("/", "-"), config)
  return {"point": name, "overrides": overrides, "train_s": round(wall, 1),
          "heldout_loss": h["loss"], "heldout_accuracy": h["accuracy"],
          "row_mode_baseline": h["row_mode_baseline"], "unigram_baseline": h["unigram_baseline"],
          "ratio_to_row_mode": h["accuracy"] / h["row_mode_baseline"]}


FINETUNE_POINTS = {  # name -> recipe overrides on compare/tiny's
  "lr3e-4 (compare/tiny before)": {},
  "lr1e-3": {"lr": 1e-3},
  "lr3e-3": {"lr": 3e-3},
  "lr1e-3-4000ex": {"lr": 1e-3, "max_train_examples": 4000, "epochs": 1},
  "lr1e-3-mean": {"lr": 1e-3, "readout": "mean"},
  "lr3e-4-mean": {"readout": "mean"},
  # Fewer labelled examples (the same number of steps): where pre-training is expected to help
  # most; a finding about the comparison, not a recipe pick.
  "lr1e-3-500ex": {"lr": 1e-3, "max_train_examples": 500, "epochs": 8},
  "lr1e-3-250ex": {"lr": 1e-3, "max_train_examples": 250, "epochs": 16},
}


def finetune_point(name: str, overrides: dict, workdir: Path, source: Path) -> dict:
  import dataclasses  # noqa: PLC0415

  from jaxlm import sharding  # noqa: PLC0415
  from jaxlm.config import from_dict  # noqa: PLC0415
  from jaxlm.data import tokenizer  # noqa: PLC0415
  from jaxlm.eval import finetune  # noqa: PLC0415
  from jaxlm.studies.config import CompareConfig  # noqa: PLC0415
  from jaxlm.train.checkpoint import restore_params  # noqa: PLC0415

  compare_config = load_config("compare/tiny", expected=CompareConfig)
  recipe = dataclasses.replace(compare_config.finetune, **overrides)
  tok = tokenizer.load_file(source / "pretrain" / "mlm" / "tokenizer.json")
  row = {"point": name, "recipe": dataclasses.asdict(recipe)}
  start = time.perf_counter()
  for variant in ("mlm", "clm", "none"):
    run_dir = source / "pretrain" / ("mlm" if variant == "none" else variant)
    config = from_dict(json.loads((run_dir / "config.json").read_text()))
    params = None if variant == "none" else restore_params(
      run_dir, sharding.make_mesh(config.mesh))[1]
    result = finetune.run(config, recipe, "goemotions_sentiment", None,
                          workdir / name.replace(" ", "_") / variant, params, tok, init=variant)
    scores = [s["metrics"]["validation"]["score"] for s in result["seeds"]]
    row[variant] = {"mean": sum(scores) / len(scores), "min": min(scores), "max": max(scores)}
  row["seconds"] = time.perf_counter() - start
  return row


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("stage", choices=["pretrain", "finetune"])
  parser.add_argument("--from", dest="source", type=Path, help="finetune: a compare workdir")
  parser.add_argument("--workdir", type=Path, required=True)
  parser.add_argument("--points", default="", help="comma-separated subset")
  args = parser.parse_args()
  out = Path(__file__).parent / "results" / f"sweep_{args.stage}.jsonl"
  out.parent.mkdir(exist_ok=True)
  if args.stage == "finetune":
    names = [p for p in args.points.split(",") if p] or list(FINETUNE_POINTS)
    print("| recipe | mlm | clm | none (no pre-training) | seconds |\n|---|---|---|---|---|")
    for name in names:
      row = finetune_point(name, FINETUNE_POINTS[name], args.workdir, args.source)
      with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
      cells = [f"{row[v]['mean']:.1f} [{row[v]['min']:.1f}–{row[v]['max']:.1f}]"
               for v in ("mlm", "clm", "none")]
      print(f"| {name} | " + " | ".join(cells) + f" | {row['seconds']:.0f} |", flush=True)
    return
  names = [p for p in args.points.split(",") if p] or list(PRETRAIN_POINTS)
  rows = []
  for name in names:
    row = run_point(name, PRETRAIN_POINTS[name], args.workdir)
    rows.append(row)
    with out.open("a") as f:
      f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
  print("| point | train s | held-out loss | MLM acc | row-mode | unigram | acc / row-mode |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['point']} | {r['train_s']:.0f} | {r['heldout_loss']:.3f} | "
          f"{100 * r['heldout_accuracy']:.1f}% | {100 * r['row_mode_baseline']:.1f}% | "
          f"{100 * r['unigram_baseline']:.1f}% | {r['ratio_to_row_mode']:.2f} |")


if __name__ == "__main__":
  main()
