"""Regenerate jaxlm/eval/data/zorro/{pairs.jsonl.gz,published.json,LICENSE} from Zorro.

  python tools/build_zorro.py ZORRO [--rev REV] [--out DIR]

ZORRO is a work tree of github.com/phueb/Zorro (files read from disk), or its git directory,
bare or not (files read with `git show REV:PATH`, REV default HEAD). It reads
sentences/babyberta/*.txt (23 paradigms, 4,000 lines each: line 2i+1 the ungrammatical and
line 2i+2 the grammatical sentence of pair i, in every file, as zorro/data.py reads them),
RoBERTa-base's per-sentence cross-entropies in
reference/huggingface_RoBERTa-base_Liu2019/0/saves/babyberta/ and LICENSE. The outputs are
byte-reproducible (rows in a fixed order, gzip with mtime=0 and no file name). See
jaxlm/eval/data/zorro/SOURCES.md for what is kept and converted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "jaxlm" / "eval" / "data" / "zorro"
SENTENCES = "sentences/babyberta"
REFERENCE = "reference/huggingface_RoBERTa-base_Liu2019/0/saves/babyberta"
N_PARADIGMS = 23
N_PAIRS = 2000


class Source:
  """Zorro's files from a work tree, or from a git directory at one revision."""

  def __init__(self, root: Path, rev: str):
    self.root, self.rev = root, rev
    self.git = not (root / SENTENCES).is_dir()
    if self.git and subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "-q",
                                    f"{rev}^{{commit}}"], capture_output=True).returncode:
      sys.exit(f"build_zorro: {root} has no {SENTENCES}/ and is no git repository with {rev}")

  def names(self, folder: str) -> list[str]:
    """The file names in `folder`, sorted (by code point, as git lists them)."""
    if not self.git:
      return sorted(p.name for p in (self.root / folder).iterdir() if p.is_file())
    listed = subprocess.run(["git", "-C", str(self.root), "ls-tree", "--name-only",
                             f"{self.rev}:{folder}"], capture_output=True, text=True, check=True)
    return sorted(listed.stdout.splitlines())

  def read(self, path: str) -> str:
    if not self.git:
      data = (self.root / path).read_bytes()
    else:
      data = subprocess.run(["git", "-C", str(self.root), "show", f"{self.rev}:{path}"],
                            capture_output=True, check=True).stdout
    return data.decode("utf-8")


def _lines(text: str, where: str) -> list[str]:
  if not text.endswith("\n") or "\r" in text:
    sys.exit(f"build_zorro: {where} is not LF-terminated lines")
  return text[:-1].split("\n")


def _paradigm(source: Source, name: str) -> tuple[list[dict], dict]:
  """One paradigm's pairs and RoBERTa-base's accuracy on them."""
  uid = name.removesuffix(".txt")
  # Phenomenon and paradigm are joined by the last "-": two phenomena hold one themselves
  # (filler-gap, island-effects), no paradigm does.
  phenomenon = uid.rsplit("-", 1)[0]
  lines = _lines(source.read(f"{SENTENCES}/{name}"), name)
  if len(lines) != 2 * N_PAIRS or not all(lines) or "-" not in uid:
    sys.exit(f"build_zorro: {name} is not {2 * N_PAIRS} sentences of a PHENOMENON-PARADIGM")
  # Odd lines (1-based) are ungrammatical, even lines grammatical, in every file (zorro/data.py).
  pairs = [{"paradigm": uid, "phenomenon": phenomenon, "pair_id": i, "good": good, "bad": bad}
           for i, (bad, good) in enumerate(zip(lines[0::2], lines[1::2]))]
  if any(p["good"] == p["bad"] for p in pairs):
    sys.exit(f"build_zorro: {name} has a pair of identical sentences")
  # RoBERTa-base's cross-entropy per sentence (lower is better), in the same order.
  scored = [line.rsplit(" ", 1) for line in
            _lines(source.read(f"{REFERENCE}/probing_{uid}_results_500000.txt"), uid)]
  if [s for s, _ in scored] != lines:
    sys.exit(f"build_zorro: RoBERTa-base's scores of {uid} are not of its sentences in order")
  xe = [float(x) for _, x in scored]
  right = sum(g < b for b, g in zip(xe[0::2], xe[1::2]))
  ties = sum(g == b for b, g in zip(xe[0::2], xe[1::2]))
  row = {"uid": uid, "phenomenon": phenomenon, "roberta_base": (right + ties / 2) / N_PAIRS,
         "roberta_base_ties": ties}
  return pairs, row


def _write_gzip(path: Path, data: bytes) -> None:
  # mtime=0 and an empty file name make the output depend on `data` only.
  with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                               compresslevel=9) as f:
    f.write(data)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("zorro", type=Path, help="a work tree or git directory of phueb/Zorro")
  parser.add_argument("--rev", default="HEAD", help="the revision of a git directory (HEAD)")
  parser.add_argument("--out", type=Path, default=OUT, help=f"output directory ({OUT})")
  args = parser.parse_args(argv)

  source = Source(args.zorro, args.rev)
  names = [n for n in source.names(SENTENCES) if n.endswith(".txt")]
  if len(names) != N_PARADIGMS:
    sys.exit(f"build_zorro: {len(names)} paradigm files in {SENTENCES}/, not {N_PARADIGMS}")
  pairs, rows = [], []
  for name in names:
    paradigm_pairs, row = _paradigm(source, name)
    pairs += paradigm_pairs
    rows.append(row)
  license_text = source.read("LICENSE")
  if not license_text.startswith("MIT License"):
    sys.exit("build_zorro: LICENSE is not the MIT licence")

  args.out.mkdir(parents=True, exist_ok=True)
  lines = "".join(json.dumps(p, ensure_ascii=False, separators=(",", ":")) + "\n" for p in pairs)
  _write_gzip(args.out / "pairs.jsonl.gz", lines.encode("utf-8"))
  table = {
      "source": f"phueb/Zorro {REFERENCE}/probing_*_results_500000.txt: RoBERTa-base's "
                "(Liu et al. 2019) cross-entropy per sentence, scored by Zorro's authors",
      "scale": "fraction of pairs whose grammatical sentence has the lower cross-entropy (0-1); "
               "a tie counts half (zorro/scoring.py breaks it by a coin flip)",
      "overall": f"unweighted mean over the {N_PARADIGMS} paradigms; a phenomenon is the mean "
                 "over its paradigms",
      "paradigms": rows,
  }
  (args.out / "published.json").write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
  (args.out / "LICENSE").write_bytes(license_text.encode("utf-8"))
  overall = 100 * math.fsum(r["roberta_base"] for r in rows) / len(rows)
  print(f"wrote {len(pairs)} pairs of {len(rows)} paradigms in "
        f"{len({r['phenomenon'] for r in rows})} phenomena to {args.out} "
        f"(RoBERTa-base {overall:.1f})")


if __name__ == "__main__":
  main()
