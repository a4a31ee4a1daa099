"""Regenerate jaxlm/eval/data/blimp/{pairs.jsonl.gz,published.json} from a BLiMP checkout.

  python tools/build_blimp.py BLIMP_DIR [--out DIR]

BLIMP_DIR is a checkout of github.com/alexwarstadt/blimp (or a copy with the same files):
data/*.jsonl (67 paradigms x 1,000 pairs) and models_summary.jsonl plus
human_validation_summary.csv, found in raw_results/summary/ or in BLIMP_DIR itself. The outputs
are byte-reproducible (rows in a fixed order, gzip with mtime=0 and no file name). The script
checks the figures it writes against the published overall accuracies and fails if they differ.
See jaxlm/eval/data/blimp/SOURCES.md for what is kept and changed.
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import json
import math
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "jaxlm" / "eval" / "data" / "blimp"
N_PARADIGMS = 67
N_PAIRS = 1000
KEPT = ("UID", "linguistics_term", "field", "pairID", "sentence_good", "sentence_bad")
MODELS = ("ngram", "lstm", "txl", "gpt2")
# The paper's overall figures (Warstadt et al. 2020, Table 3, corrected version), in points.
PUBLISHED_OVERALL = {"ngram": 61.2, "lstm": 69.8, "txl": 69.6, "gpt2": 83.0, "human": 88.6}
# Two spellings of one field value in the source; the second occurs in one paradigm only.
FIELD_SPELLING = {"syntax/semantics": "syntax_semantics"}


def _summary_file(root: Path, name: str) -> Path:
  for candidate in (root / "raw_results" / "summary" / name, root / name):
    if candidate.is_file():
      return candidate
  sys.exit(f"build_blimp: {name} not found in {root}/raw_results/summary/ or {root}/")


def _read_jsonl(path: Path) -> list[dict]:
  with path.open(encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _published(root: Path) -> list[dict]:
  """One row per paradigm: {uid, phenomenon, ngram, lstm, txl, gpt2, human} as fractions."""
  models = [r for r in _read_jsonl(_summary_file(root, "models_summary.jsonl"))
            if r["UID"] != "overall"]  # "overall" rows are the source's own aggregates
  with _summary_file(root, "human_validation_summary.csv").open(encoding="utf-8") as f:
    # Columns: Condition (the paradigm UID), accepted, total_mean (human accuracy), count. It
    # also lists two paradigms that were dropped from the released 67; they are skipped here.
    human = {r["Condition"]: float(r["total_mean"]) for r in csv.DictReader(f)}
  rows = [{"uid": r["UID"], "phenomenon": r["linguistics_term"],
           **{m: r[m] for m in MODELS}, "human": human[r["UID"]]} for r in models]
  return sorted(rows, key=lambda r: r["uid"])


def _check_overall(rows: list[dict]) -> None:
  # The published overall is the unweighted mean over the 67 paradigms (not over phenomena).
  for system, expected in PUBLISHED_OVERALL.items():
    overall = 100 * math.fsum(r[system] for r in rows) / len(rows)
    if round(overall, 1) != expected:
      sys.exit(f"build_blimp: {system} overall {overall:.2f} != published {expected}")


def _pairs(root: Path, phenomenon: dict[str, str]) -> list[dict]:
  files = sorted((root / "data").glob("*.jsonl"))
  if len(files) != N_PARADIGMS:
    sys.exit(f"build_blimp: {len(files)} paradigm files in {root / 'data'}, not {N_PARADIGMS}")
  pairs = []
  for path in files:
    rows = _read_jsonl(path)
    if [r["pairID"] for r in rows] != [str(i) for i in range(N_PAIRS)] or \
        {r["UID"] for r in rows} != {path.stem}:
      sys.exit(f"build_blimp: {path} is not {N_PAIRS} pairs of paradigm {path.stem}, ids 0..")
    for r in rows:
      row = {k: r[k] for k in KEPT}
      # Group paradigms as the paper's tables do: the data files label the two
      # animate_subject_* paradigms "s-selection", the summary (and paper) argument_structure.
      row["linguistics_term"] = phenomenon[r["UID"]]
      row["field"] = FIELD_SPELLING.get(r["field"], r["field"])
      pairs.append(row)
  return pairs


def _write_gzip(path: Path, data: bytes) -> None:
  # mtime=0 and an empty file name make the output depend on `data` only.
  with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                               compresslevel=9) as f:
    f.write(data)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("blimp_dir", type=Path, help="a checkout of alexwarstadt/blimp")
  parser.add_argument("--out", type=Path, default=OUT, help=f"output directory ({OUT})")
  args = parser.parse_args(argv)

  published = _published(args.blimp_dir)
  _check_overall(published)
  pairs = _pairs(args.blimp_dir, {r["uid"]: r["phenomenon"] for r in published})
  if sorted({p["UID"] for p in pairs}) != [r["uid"] for r in published]:
    sys.exit("build_blimp: the paradigms in data/ and in models_summary.jsonl differ")
  by_phenomenon = collections.Counter(r["phenomenon"] for r in published)

  args.out.mkdir(parents=True, exist_ok=True)
  lines = "".join(json.dumps(p, ensure_ascii=False, separators=(",", ":")) + "\n" for p in pairs)
  _write_gzip(args.out / "pairs.jsonl.gz", lines.encode("utf-8"))
  table = {
      "source": "alexwarstadt/blimp raw_results/summary: models_summary.jsonl (ngram = 5-gram, "
                "lstm, txl = Transformer-XL, gpt2) and human_validation_summary.csv (human)",
      "scale": "fraction of pairs right (0-1), as in the source",
      "overall": "unweighted mean over the 67 paradigms; a phenomenon is the mean over its "
                 "paradigms",
      "paradigms": published,
  }
  (args.out / "published.json").write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
  print(f"wrote {len(pairs)} pairs of {len(published)} paradigms in {len(by_phenomenon)} "
        f"phenomena to {args.out}")


if __name__ == "__main__":
  main()
