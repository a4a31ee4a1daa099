"""A GLUE-format task built on the fly, for fine-tuning and comparison tests."""

from pathlib import Path

import numpy as np


def toy_sst2(root: Path) -> Path:
  """A sentiment task a model must learn from its words: 'good'/'great' vs 'bad'/'awful'."""
  rng = np.random.default_rng(0)
  task_dir = root / "SST-2"
  task_dir.mkdir(parents=True)
  for split, n in (("train", 256), ("dev", 64)):
    lines = ["sentence\tlabel"]
    for _ in range(n):
      label = int(rng.integers(2))
      word = rng.choice(["good", "great"] if label else ["bad", "awful"])
      filler = " ".join(rng.choice(["the", "a", "film", "movie", "plot", "actor"], 4))
      lines.append(f"{filler} was {word} \t{label}")
    (task_dir / f"{split}.tsv").write_text("\n".join(lines) + "\n")
  return root
