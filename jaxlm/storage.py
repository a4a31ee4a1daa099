"""Run directories on a local disk or in Cloud Storage (`gs://BUCKET/...`), through one API.

Every file jaxlm writes into a workdir (config.json, tokenizer.json, metrics.jsonl, reports,
predictions) goes through `etils.epath`, the path library orbax and TFDS use, so a workdir, an
`--init_from` run or a TFDS data dir may be local or `gs://` alike. Checkpoints go through
orbax and tensorstore, which write to Cloud Storage directly; other files through `gcsfs`
(the `jaxlm[gcs]` extra). TensorBoard writes `gs://` event files through google-cloud-storage.
"""

from __future__ import annotations

import os
import time

from etils import epath

from jaxlm.errors import ConfigError

_REMOTE = ("gs://", "s3://")


def is_remote(path: str | os.PathLike) -> bool:
  return os.fspath(path).startswith(_REMOTE)


def path(p: str | os.PathLike) -> epath.Path:
  """`p` as an `epath.Path`; a local one made absolute (orbax needs absolute directories)."""
  if not is_remote(p):
    return epath.Path(p).absolute()
  if os.fspath(p).startswith("gs://"):
    try:
      import gcsfs  # noqa: F401, PLC0415 - what epath reads and writes gs:// files with
    except ImportError:
      raise ConfigError(f"{os.fspath(p)}: Cloud Storage paths need gcsfs; "
                        "pip install 'jaxlm[gcs]'") from None
  return epath.Path(p)


def write_atomic(file: epath.Path, data: str | bytes) -> None:
  """Writes all of `data` or nothing: a killed or concurrent writer never leaves half a file.
  A Cloud Storage object appears whole when its upload completes; a local file is written
  under a temporary name and renamed."""
  file.parent.mkdir(parents=True, exist_ok=True)
  target = file if is_remote(file) else file.with_name(f"{file.name}.{os.getpid()}.tmp")
  if isinstance(data, str):
    target.write_text(data, encoding="utf-8")
  else:
    target.write_bytes(data)
  if target != file:
    target.replace(file)


class JsonLines:
  """An append-only text log (metrics.jsonl) that outlives restarts.

  Locally, lines are appended as they come. Cloud Storage objects cannot be appended to, so there
  the whole file (what earlier runs left plus this run's lines) is rewritten, at most every
  `flush_secs` and on close, as TensorBoard's own Cloud Storage writer does.
  """

  def __init__(self, file: epath.Path, flush_secs: float = 30.0):
    self.file, self.flush_secs = file, flush_secs
    self.remote = is_remote(file)
    if self.remote:
      self.lines = [file.read_text()] if file.exists() else []
      self.flushed_at, self.dirty = time.monotonic(), False
    else:
      file.parent.mkdir(parents=True, exist_ok=True)
      self.local = open(file, "a", buffering=1, encoding="utf-8")

  def write(self, line: str) -> None:
    if not self.remote:
      self.local.write(line + "\n")
      return
    self.lines.append(line + "\n")
    self.dirty = True
    if time.monotonic() - self.flushed_at >= self.flush_secs:
      self.flush()

  def flush(self) -> None:
    if self.remote and self.dirty:
      self.file.write_text("".join(self.lines))
      self.flushed_at, self.dirty = time.monotonic(), False

  def close(self) -> None:
    if self.remote:
      self.flush()
    else:
      self.local.close()
