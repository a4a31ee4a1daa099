"""What the one-GPU scaling grid (`jaxlm scale --config scale/gpu`) costs: each grid size's
training step timed on synthetic data (`jaxlm.train.bench`, the step `jaxlm train` runs), and
the grid's pre-training time predicted from it (tokens / measured tokens per second, per point).

  python benchmarks/scale_gpu_cost.py --out benchmarks/results/scale_gpu_cost.json

Held-out evaluations, BLiMP and fine-tuning come on top (on 2 CPU cores they were about a third of
the tiny grid's time; on a GPU pre-training dominates). The table it prints is in docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import sys

from jaxlm.config import load_config
from jaxlm.studies.config import ScaleConfig
from jaxlm.studies.scale import point_config, point_name
from jaxlm.train.bench import bench


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="scale/gpu")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  config = load_config(args.config, expected=ScaleConfig)
  sizes = sorted({(L, D) for L, D, _ in config.grid()})
  budgets = sorted({n for _, _, n in config.grid()})
  rows, total_s = [], 0.0
  for variant in config.objective_list():
    for L, D in sizes:
      result = bench(point_config(config, variant, L, D, budgets[0]), steps=args.steps,
                     warmup=2, name=f"{variant} {point_name(L, D, budgets[0])}")
      seconds = {n: n / result["tokens_per_s"] for n in budgets}
      total_s += sum(seconds.values())
      rows.append({"variant": variant, "layers": L, "width": D, **result,
                   "pretrain_seconds": {str(n): s for n, s in seconds.items()}})
      print(f"{variant:8s} L{L:<2d} D{D:<4d} params {result['params']:>11,d} "
            f"step {result['step_ms']:7.1f} ms  {result['tokens_per_s']:>11,.0f} tok/s  "
            f"MFU {result['mfu'] or 0:.2f}  compile {result['compile_s']:.0f} s  "
            + "  ".join(f"{n / 1e6:g}M: {s / 60:.1f} min" for n, s in seconds.items()),
            flush=True)
  print(f"grid pre-training, predicted: {total_s / 3600:.2f} h on one {rows[0]['device_kind']}")
  if args.out:
    with open(args.out, "w") as f:
      json.dump({"config": args.config, "rows": rows, "pretrain_hours": total_s / 3600}, f,
                indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
