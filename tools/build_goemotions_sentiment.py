"""Regenerate jaxlm/eval/data/goemotions_sentiment/{train,dev,test}.jsonl.gz from GoEmotions.

  python tools/build_goemotions_sentiment.py TRAIN_TSV DEV_TSV TEST_TSV [--out DIR]
      [--train-size 16000] [--seed 0] [--allow-other-input]

The three inputs are the official GoEmotions splits `train.tsv`, `dev.tsv`, `test.tsv` (43,410 /
5,426 / 5,427 rows; no header; columns: text, comma-separated emotion ids in the order of
`emotions.txt`, Reddit comment id), as published in
github.com/google-research/google-research under goemotions/data/ (copied unchanged into
github.com/monologg/GoEmotions-pytorch under data/original/). Their sha256 is checked; pass
--allow-other-input to build from other files anyway.

What it does (see jaxlm/eval/data/goemotions_sentiment/SOURCES.md):
  * each of the 27 emotions is mapped to its sentiment group with the dataset authors' own
    mapping (goemotions/data/sentiment_dict.json); `neutral` is its own group;
  * an example is kept only if all its labels fall in ONE group and that group is `negative`
    (label 0) or `positive` (label 1): neutral, ambiguous and mixed-sentiment examples are dropped;
  * train only: examples whose exact text also occurs anywhere in the official dev or test file are
    dropped, then `--train-size` examples are drawn (ranked by sha256 of "<seed>:<comment id>", so
    the draw does not depend on the Python version) and written in their original order;
  * dev and test keep every remaining example, in the original order.

Outputs are byte-reproducible: one JSON object a line, {"text": ..., "label": 0|1}, UTF-8,
gzip level 9 with mtime=0 and no file name in the header.
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import hashlib
import io
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "jaxlm" / "eval" / "data" / "goemotions_sentiment"

# goemotions/data/emotions.txt: emotion id i is EMOTIONS[i].
EMOTIONS = (
    "admiration amusement anger annoyance approval caring confusion curiosity desire "
    "disappointment disapproval disgust embarrassment excitement fear gratitude grief joy love "
    "nervousness optimism pride realization relief remorse sadness surprise neutral").split()
# goemotions/data/sentiment_dict.json (the authors' grouping), plus `neutral` on its own.
SENTIMENT = {
    "positive": ("amusement", "excitement", "joy", "love", "desire", "optimism", "caring", "pride",
                 "admiration", "gratitude", "relief", "approval"),
    "negative": ("fear", "nervousness", "remorse", "embarrassment", "disappointment", "sadness",
                 "grief", "disgust", "anger", "annoyance", "disapproval"),
    "ambiguous": ("realization", "surprise", "curiosity", "confusion"),
    "neutral": ("neutral",),
}
LABELS = ("negative", "positive")  # label id = index
GROUP = {e: g for g, es in SENTIMENT.items() for e in es}
assert sorted(GROUP) == sorted(EMOTIONS)

# sha256 and row count of the official files (google-research commit 2adf640a, identical blobs in
# monologg/GoEmotions-pytorch data/original/).
EXPECTED = {
    "train": ("1c254a142be5c00e80d819b9ae1bbd36d94b2eeb8f4b1271846508d57e57d9c5", 43410),
    "dev": ("575489c079c9de1097062a01738f998590d6b7ead66dd1c9fd1d2ba01fd8bc62", 5426),
    "test": ("0587b2dd8b27b97352adbfc3fb083d46005c8946657fdc2b1ca8b1cc7f1f8be4", 5427),
}


def _read(path: Path, split: str, strict: bool) -> list[tuple[str, str, str]]:
  """Rows (text, emotion ids, comment id). The files quote fields CSV-style ("" inside "...")."""
  raw = path.read_bytes()
  digest = hashlib.sha256(raw).hexdigest()
  want, n_want = EXPECTED[split]
  if digest != want:
    msg = f"build_goemotions_sentiment: {path} has sha256 {digest}, expected {want} ({split})"
    if strict:
      sys.exit(msg + "; pass --allow-other-input to use it anyway")
    print("warning: " + msg, file=sys.stderr)
  # Only a newline ends a row (str.splitlines() would also split at U+2028, \x85 and the like).
  rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), delimiter="\t"))
  bad = [r for r in rows if len(r) != 3]
  if bad:
    sys.exit(f"build_goemotions_sentiment: {path}: {len(bad)} rows without 3 fields: {bad[0]!r}")
  if strict and len(rows) != n_want:
    sys.exit(f"build_goemotions_sentiment: {path}: {len(rows)} rows, expected {n_want}")
  return [tuple(r) for r in rows]


def _label(ids: str) -> int | None:
  groups = {GROUP[EMOTIONS[int(i)]] for i in ids.split(",")}
  if len(groups) != 1:
    return None
  (group,) = groups
  return LABELS.index(group) if group in LABELS else None


def _write(path: Path, examples: list[dict]) -> None:
  data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples).encode("utf-8")
  # mtime=0 and an empty file name make the output depend on `data` only.
  with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                             compresslevel=9) as f:
    f.write(data)


def main(argv: list[str] | None = None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("train", type=Path)
  p.add_argument("dev", type=Path)
  p.add_argument("test", type=Path)
  p.add_argument("--out", type=Path, default=OUT)
  p.add_argument("--train-size", type=int, default=16000)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--allow-other-input", action="store_true")
  args = p.parse_args(argv)
  strict = not args.allow_other_input

  rows = {s: _read(getattr(args, s), s, strict) for s in ("train", "dev", "test")}
  held_out_texts = {t for s in ("dev", "test") for t, _, _ in rows[s]}

  out: dict[str, list[dict]] = {}
  for split, split_rows in rows.items():
    kept = [(t, cid, y) for t, ids, cid in split_rows if (y := _label(ids)) is not None]
    n_kept = len(kept)
    if split == "train":
      kept = [k for k in kept if k[0] not in held_out_texts]
      n_overlap = n_kept - len(kept)
      if args.train_size < len(kept):
        rank = sorted(range(len(kept)), key=lambda i: hashlib.sha256(
            f"{args.seed}:{kept[i][1]}".encode()).hexdigest())
        chosen = sorted(rank[:args.train_size])
        kept = [kept[i] for i in chosen]
      print(f"train: {len(split_rows)} rows, {n_kept} single-sentiment pos/neg, "
            f"{n_overlap} dropped (text also in dev/test), {len(kept)} written")
    else:
      print(f"{split}: {len(split_rows)} rows, {n_kept} single-sentiment pos/neg written")
    out[split] = [{"text": t, "label": y} for t, _, y in kept]
    counts = collections.Counter(e["label"] for e in out[split])
    print("   " + ", ".join(f"{LABELS[k]} {counts[k]} ({100 * counts[k] / len(kept):.1f}%)"
                            for k in range(len(LABELS))))

  args.out.mkdir(parents=True, exist_ok=True)
  for split, examples in out.items():
    path = args.out / f"{split}.jsonl.gz"
    _write(path, examples)
    print(f"wrote {path} ({path.stat().st_size:,} bytes, "
          f"sha256 {hashlib.sha256(path.read_bytes()).hexdigest()[:16]})")


if __name__ == "__main__":
  main()
