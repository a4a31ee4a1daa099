"""The sweep behind the CPU default of `jaxlm compare` (configs/compare/tiny.py).

Stage `pretrain`: MLM recipes at a fixed wall-clock-sized budget on the embedded corpus, picked
on held-out masked-token accuracy against the row-mode baseline (jaxlm.eval.mlm_baseline) and on
held-out loss; no evaluation set is looked at. Writes one JSON line per point to
benchmarks/results/sweep_pretrain.jsonl and prints a markdown table.

  python benchmarks/sweep_cpu_recipe.py pretrain --workdir /tmp/sweep
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from jaxlm.config import apply_override, load_config
from jaxlm.eval.compare import heldout_quality
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
                        "model.vocab_size": "2048"},
  "rope-lr3e-3": {"steps": "600", "model.position": "rope", "optimizer.lr": "3e-3",
                  "optimizer.warmup_steps": "60"},
  "rope-mask25": {"steps": "600", "model.position": "rope", "mlm.mask_rate": "0.25"},
  "rope-mask40-only-b32": {"steps": "300", "batch_size": "32", "model.position": "rope",
                           **_MASK40},
}


def run_point(name: str, overrides: dict[str, str], workdir: Path) -> dict:
  config = load_config("tiny")
  for key, value in {**BASE, **overrides}.items():
    apply_override(config, key, value)
  config.validate()
  start = time.perf_counter()
  config = train(config, workdir / name.replace("/", "-"), quiet=True)["config"]
  wall = time.perf_counter() - start
  h = heldout_quality(workdir / name.replace("/", "-"), config)
  return {"point": name, "overrides": overrides, "train_s": round(wall, 1),
          "heldout_loss": h["loss"], "heldout_accuracy": h["accuracy"],
          "row_mode_baseline": h["row_mode_baseline"], "unigram_baseline": h["unigram_baseline"],
          "ratio_to_row_mode": h["accuracy"] / h["row_mode_baseline"]}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("stage", choices=["pretrain"])
  parser.add_argument("--workdir", type=Path, required=True)
  parser.add_argument("--points", default="", help="comma-separated subset")
  args = parser.parse_args()
  out = Path(__file__).parent / "results" / f"sweep_{args.stage}.jsonl"
  out.parent.mkdir(exist_ok=True)
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
