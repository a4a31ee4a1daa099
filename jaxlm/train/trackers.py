"""Where a run's metrics go besides WORKDIR/metrics.jsonl (the run's own record, always written:
resume and the studies read it). `config.trackers` names them; adding one is a class here and a
line in TRACKERS.

- tensorboard: event files in WORKDIR/tensorboard, the config as text at step 0 and as
  hyperparameters (the HParams tab: every config field by its dotted name, lists as text, beside
  the held-out and training loss; `pip install 'jaxlm[tensorboard]'` for the viewer:
  `tensorboard --logdir WORKDIR`, or `--logdir runs` to compare runs);
- wandb: Weights & Biases (`pip install 'jaxlm[wandb]'`); `WANDB_MODE=offline` logs to
  WORKDIR/wandb without a network (`wandb sync` uploads later). One W&B run per workdir: a
  resumed run continues it.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Protocol

from etils import epath

from jaxlm.config import ConfigError


class Tracker(Protocol):

  def scalars(self, split: str, step: int, values: dict[str, float]) -> None: ...

  def flush(self) -> None: ...

  def close(self) -> None: ...


class TensorBoard:

  def __init__(self, workdir: epath.Path, config: dict):
    from tensorboardX import SummaryWriter  # noqa: PLC0415 - only runs that ask for it

    self.writer = SummaryWriter(os.fspath(workdir / "tensorboard"), flush_secs=30)
    self.writer.add_text("config", f"```json\n{json.dumps(config, indent=1)}\n```", 0)
    from tensorboardX.summary import hparams  # noqa: PLC0415 - as SummaryWriter

    for summary in hparams(_flat(config), dict.fromkeys(HPARAM_METRICS)):
      self.writer.file_writer.add_summary(summary)

  def scalars(self, split: str, step: int, values: dict[str, float]) -> None:
    for name, value in values.items():
      self.writer.add_scalar(f"{split}/{name}", value, step)

  def flush(self) -> None:
    self.writer.flush()

  def close(self) -> None:
    self.writer.close()


# The scalars the HParams tab shows beside each run's hyperparameters.
HPARAM_METRICS = ("eval/loss", "eval/accuracy", "train/loss")


def _flat(config: dict, prefix: str = "") -> dict[str, str | float | bool]:
  """{"optimizer.lr": 0.002, ...}: nested fields by dotted name; lists and None as text."""
  out = {}
  for key, value in config.items():
    if isinstance(value, dict):
      out.update(_flat(value, f"{prefix}{key}."))
    else:
      out[prefix + key] = (value if isinstance(value, (str, bool, int, float))
                           else json.dumps(value))
  return out


class WandB:

  def __init__(self, workdir: epath.Path, config: dict):
    try:
      import wandb  # noqa: PLC0415 - an optional extra
    except ImportError:
      raise ConfigError("config.trackers=wandb: needs the wandb extra: pip install "
                        "'jaxlm[wandb]'") from None
    id_file = workdir / "wandb-id"  # one W&B run per workdir, continued on resume
    if not id_file.exists():
      id_file.write_text(uuid.uuid4().hex[:16])
    self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "jaxlm"), name=workdir.name,
                          id=id_file.read_text().strip(), resume="allow", config=config,
                          dir=os.fspath(workdir))

  def scalars(self, split: str, step: int, values: dict[str, float]) -> None:
    self.run.log({f"{split}/{name}": value for name, value in values.items()}, step=step)

  def flush(self) -> None:
    pass  # wandb streams on its own

  def close(self) -> None:
    self.run.finish()


TRACKERS = {"tensorboard": TensorBoard, "wandb": WandB}


def check(names: tuple[str, ...]) -> None:
  unknown = [n for n in names if n not in TRACKERS]
  if unknown:
    raise ConfigError(f"config.trackers={','.join(names)!r}: unknown {unknown[0]!r}; allowed: "
                      f"{', '.join(TRACKERS)} (metrics.jsonl is always written)")


def open_trackers(names: tuple[str, ...], workdir: epath.Path, config: dict) -> list[Tracker]:
  check(names)
  return [TRACKERS[name](workdir, config) for name in names]
