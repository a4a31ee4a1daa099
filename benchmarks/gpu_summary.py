"""The short table `benchmarks/gpu_run.sh` prints last: each stage's status and wall time, the
versions, the kernel checks, the jaxlm/peer throughput ratios and the comparison's headline
numbers. Reads only what the run wrote; a missing or broken file is reported, never fatal.

  python benchmarks/gpu_summary.py OUT [COMPARE_WORKDIR]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def _lines(path: Path) -> list[dict]:
  if not path.is_file():
    return []
  rows = []
  for line in path.read_text(errors="replace").splitlines():
    if line.startswith("{"):
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        pass
  return rows


def _fmt(x, spec: str = ".3g") -> str:
  return "-" if x is None else format(x, spec)


def stages(out: Path) -> list[str]:
  rows = _lines(out / "stages.jsonl")
  text = ["| stage | status | rc | seconds | limit | note |", "|---|---|---|---|---|---|"]
  text += [f"| {r['stage']} | {r['status']} | {_fmt(r['rc'], 'd')} | {r['seconds']} | "
           f"{r.get('limit_s', '-')} "
           f"| {r.get('note', '')} |" for r in rows]
  return text


def versions(out: Path) -> list[str]:
  path = out / "env.json"
  if not path.is_file():
    return ["versions: env.json missing"]
  env = json.loads(path.read_text())
  keys = ("python", "jax", "jaxlib", "flax", "optax", "torch", "transformers", "cudnn",
          "devices", "commit")
  return ["versions: " + ", ".join(f"{k} {env[k]}" for k in keys if env.get(k) is not None)]


def kernel_tests(log: Path) -> list[str]:
  """Per kernel, how many of test_kernels.py's contract tests passed, failed or were skipped."""
  if not log.is_file():
    return []
  counts: dict[str, dict[str, int]] = {}
  for name, outcome in re.findall(r"test_kernel_matches_the_dense_mask\[([\w-]+?)-[\w-]+\] "
                                   r"(PASSED|FAILED|SKIPPED|ERROR)", log.read_text(errors="replace")):
    counts.setdefault(name, {}).setdefault(outcome.lower(), 0)
    counts[name][outcome.lower()] += 1
  if not counts:
    return []
  return ["kernel tests (test_kernels.py, float32): " + "; ".join(
    f"{k} " + ", ".join(f"{n} {o}" for o, n in sorted(v.items())) for k, v in sorted(counts.items()))]


def kernel_checks(out: Path) -> list[str]:
  rows = _lines(out / "kernels.jsonl")
  if not rows:
    return []
  text = [f"kernel checks (bf16, vs float32 reference; {rows[0].get('backend', '?')}; "
          f"skipped: {', '.join(rows[0].get('skipped', [])) or 'none'}):"]
  for r in rows:
    if "mask" in r and "rel_error" in r:
      e = r["rel_error"]
      cudnn = f" cudnn_in_hlo={r['cudnn_in_hlo']}" if "cudnn_in_hlo" in r else ""
      text.append(f"  {r['kernel']:5s} {r['mask']:20s} out {e['out']:.1e} dq {e['dq']:.1e} "
                  f"dk {e['dk']:.1e} dv {e['dv']:.1e} {'ok' if r['ok'] else 'FAIL'}{cudnn}")
    elif "mask" in r and "error" in r:
      text.append(f"  {r['kernel']:5s} {r['mask']:20s} FAIL {r['error'][:150]}")
    elif "timing" in r:
      text.append(f"  {r['timing']:5s} {r['mask']:20s} fwd+bwd {r['fwd_bwd_ms']:.3f} ms at "
                  f"{'x'.join(map(str, r['shape_BxTxHxK']))}")
  return text


def peers(out: Path) -> list[str]:
  rows = _lines(out / "peers.jsonl")
  if not rows:
    return []
  text = ["| run | batch x seq | tokens/s | step ms | MFU | peak GB | compile/first step s |",
          "|---|---|---|---|---|---|---|"]
  for r in rows:
    if "peer" in r:
      text.append(f"| {r['peer']} ({r['model']}, torch) | {r['batch']}x{r['seq']} | "
                  f"{r['tokens_per_s']:,.0f} | {r['step_ms']:.1f} | - | "
                  f"{_fmt(r.get('peak_memory_gb'))} | {r['first_step_s']:.0f} |")
    elif "jaxlm_for" in r:
      text.append(f"| jaxlm {r['config']} | {r['batch']}x{r['seq']} | {r['tokens_per_s']:,.0f} | "
                  f"{r['step_ms']:.1f} | {_fmt(r.get('mfu'), '.3f')} | "
                  f"{_fmt(r.get('peak_memory_gb'))} | {r['compile_s']:.0f} |")
  text += [f"{r['ratio']}: tokens/s ratio {r['tokens_per_s_ratio']:.2f} (target >= 1.5), "
           f"jaxlm MFU {_fmt(r.get('jaxlm_mfu'), '.3f')} on {r['device_kind']}"
           for r in rows if "ratio" in r]
  return text


def compare(workdir: Path | None) -> list[str]:
  if workdir is None or not workdir.is_dir():
    return []
  if not (workdir / "report.json").is_file():
    return [f"compare: no report.json in {workdir} (the runs finished so far are in the tarball)"]
  s = json.loads((workdir / "report.json").read_text())
  text = ["compare (report.md in compare_gpu.tar.gz):"]
  for name, v in s["variants"].items():
    h = v["heldout"]
    text.append(f"  {name}: {v['tokens'] / 1e6:.1f}M tokens, {v['flops']:.2e} FLOPs, "
                f"{v['seconds'] / 60:.1f} min; held-out loss {_fmt(h.get('loss'), '.3f')}, "
                f"accuracy {_fmt(h.get('accuracy'), '.3f')}")
  for task, per_run in s.get("zero_shot", {}).items():
    refs = next(iter(per_run.values()), {}).get("references", {})
    text.append(f"  {task}: " + ", ".join(f"{n} {r['overall']:.1f}" for n, r in per_run.items())
                + "".join(f"; {n} {r['overall']:.1f}" for n, r in refs.items()))
  for arm, per_task in s.get("finetune", {}).items():
    for task, result in per_task.items():
      shown = "; ".join(f"{split} " + ", ".join(f"{m} {v['median']:.1f} [{v['min']:.1f}-{v['max']:.1f}]"
                                                for m, v in metrics.items())
                        for split, metrics in result["summary"].items())
      text.append(f"  finetune {arm} {task}: {shown} ({len(result['seeds'])} seeds)")
  return text


def main(argv: list[str]) -> int:
  out = Path(argv[0])
  workdir = Path(argv[1]) if len(argv) > 1 else None
  parts = [lambda: stages(out), lambda: versions(out), lambda: kernel_tests(out / "gpu_run.log"),
           lambda: kernel_checks(out), lambda: peers(out), lambda: compare(workdir)]
  for part in parts:
    try:
      lines = part()
      if lines:
        print("\n".join(lines))
    except Exception as e:  # noqa: BLE001 - a summary never hides the rest of the table
      print(f"(summary part failed: {type(e).__name__}: {e})")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
