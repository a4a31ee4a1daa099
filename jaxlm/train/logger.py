"""Where training metrics go: WORKDIR/metrics.jsonl, the config's trackers (trackers.py:
TensorBoard, Weights & Biases), a progress bar.

Only process 0 writes; every other process gets a logger that drops everything.
"""

from __future__ import annotations

import json
import math
import os

import jax
import tqdm

from jaxlm import storage
from jaxlm.train.trackers import open_trackers


class MetricsLogger:

  def __init__(self, workdir: str | os.PathLike, total_steps: int, initial_step: int = 0,
               quiet: bool = False, trackers: tuple[str, ...] = ("tensorboard",),
               config: dict | None = None):
    self.enabled = jax.process_index() == 0
    if not self.enabled:
      return
    workdir = storage.path(workdir)
    self.jsonl = storage.JsonLines(workdir / "metrics.jsonl")
    self.trackers = open_trackers(trackers, workdir, config or {})
    self.bar = tqdm.tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True,
                         disable=quiet, mininterval=1.0)

  def write(self, event: dict) -> None:
    """One JSON object per event; its scalars also to each tracker under `split/name`."""
    if not self.enabled:
      return
    event = {k: _plain(v) for k, v in event.items()}
    self.jsonl.write(json.dumps(event))
    split, step = event.get("split", "train"), event["step"]
    scalars = {name: value for name, value in event.items()
               if name not in ("step", "split") and isinstance(value, (int, float))}
    for tracker in self.trackers:
      tracker.scalars(split, step, scalars)
    if split == "train":
      loss = event["loss"]
      self.bar.set_postfix(loss="nan" if loss is None else f"{loss:.3f}",
                           tok_s=f"{event.get('tokens_per_s') or 0:,.0f}", refresh=False)

  def advance(self, steps: int) -> None:
    if self.enabled:
      self.bar.update(steps)

  def flush(self) -> None:
    """Stores what was logged so far (Cloud Storage files are otherwise stored every 30 s)."""
    if self.enabled:
      self.jsonl.flush()
      for tracker in self.trackers:
        tracker.flush()

  def close(self) -> None:
    if self.enabled:
      self.bar.close()
      for tracker in self.trackers:
        tracker.close()
      self.jsonl.close()


def _plain(value):
  """JSON-safe Python scalars; NaN and Inf become null."""
  if hasattr(value, "item"):
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value
