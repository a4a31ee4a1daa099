"""What every study's plots share: matplotlib without a display, and PNGs written atomically
(local or gs://)."""

from __future__ import annotations

import io

import matplotlib
from etils import epath

from jaxlm import storage

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend


def save_png(fig, file: epath.Path, dpi: int = 120) -> None:
  """Writes a matplotlib figure as a PNG, atomically, and closes it."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")  # no clipped labels
  plt.close(fig)
  storage.write_atomic(file, buffer.getvalue())
