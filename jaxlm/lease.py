"""One process owns a run directory: a second `jaxlm train` (finetune, compare, scale) on a workdir
that a live process holds is refused at once, naming the holder, and a killed run never blocks a
restart. Two runs writing one workdir would silently interleave checkpoints and metrics.

On a local disk the lock is `flock(2)` on WORKDIR/.jaxlm-lease.json: the kernel drops it when the
holder dies, even by kill -9, so it cannot go stale. Cloud Storage has no locks, so there the file
is a lease: the holder rewrites its `renewed` time every `renew_s`; one not renewed within `ttl_s`
(a killed run's) is stale and taken over.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
import uuid
from typing import Literal

from jaxlm import storage
from jaxlm.errors import ConfigError

FILE = ".jaxlm-lease.json"
_KEYS = {"host", "pid", "command", "since", "renewed", "token"}


class WorkdirBusy(ConfigError):
  """Another live process holds the workdir; one line naming it (host, pid, since when)."""


def _busy(workdir, held: dict | None, renewed: bool) -> WorkdirBusy:
  who = "another jaxlm process"  # it has the lock but has not yet written who it is
  if held:
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(held["since"]))
    who = f"jaxlm {held['command']} on host {held['host']}, pid {held['pid']}, since {since}"
    if renewed:  # a flock holder never renews: it holds until it exits
      who += f" (lease renewed {max(0, time.time() - held['renewed']):.0f} s ago)"
  return WorkdirBusy(f"{os.fspath(workdir)} is in use by {who}; "
                     "wait for it to finish or use another --workdir")


def _parse(text: str | bytes) -> dict | None:
  try:
    held = json.loads(text)
  except ValueError:
    return None
  return held if isinstance(held, dict) and _KEYS <= held.keys() else None


class Lease:
  """`with Lease(workdir, command="train", holder=jax.process_index() == 0):` around a command.

  `holder=False` (every other process of a multi-host run) makes it a no-op. `mode` forces the
  local `flock` or the Cloud Storage `lease_file` protocol; "auto" picks by the path. `settle_s`
  is how long a lease-file writer waits before checking that its write was not overwritten by a
  concurrent one (Cloud Storage is last-writer-wins).
  """

  def __init__(self, workdir, command: str, holder: bool = True, ttl_s: float = 120.0,
               renew_s: float | None = None, settle_s: float = 1.0,
               mode: Literal["auto", "flock", "lease_file"] = "auto"):
    self.workdir, self.command, self.holder = workdir, command, holder
    self.ttl_s, self.settle_s = ttl_s, settle_s
    self.renew_s = ttl_s / 4 if renew_s is None else renew_s
    if mode == "auto":
      mode = "lease_file" if storage.is_remote(workdir) else "flock"
    self.mode, self.fd, self.thread, self.stop = mode, None, None, threading.Event()

  def __enter__(self) -> Lease:
    if not self.holder:
      return self
    directory = storage.path(self.workdir)
    self.file, now = directory / FILE, time.time()
    self.ours = {"host": socket.gethostname(), "pid": os.getpid(), "command": self.command,
                 "since": now, "renewed": now, "token": uuid.uuid4().hex}
    try:
      directory.mkdir(parents=True, exist_ok=True)
      self._flock() if self.mode == "flock" else self._lease_file()
    except OSError as e:
      reason = e.strerror or str(e).replace("\n", " ")
      raise ConfigError(f"--workdir {os.fspath(self.workdir)}: cannot create it ({reason})") \
        from None
    return self

  def _flock(self) -> None:
    # Python's fds are not inherited by exec'd subprocesses, so only this process holds the lock.
    # flock locks belong to the open file description: a second open in this process conflicts too.
    fd = os.open(os.fspath(self.file), os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      held = _parse(os.pread(fd, 1 << 16, 0)) if isinstance(e, BlockingIOError) else None
      os.close(fd)
      if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP):  # a filesystem without flock: lease it
        self.mode = "lease_file"
        return self._lease_file()
      if isinstance(e, BlockingIOError):
        raise _busy(self.workdir, held, renewed=False) from None
      raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(self.ours).encode(), 0)
    self.fd = fd

  def _read(self) -> dict | None:
    try:
      return _parse(self.file.read_text())
    except FileNotFoundError:
      return None

  def _lease_file(self) -> None:
    held = self._read()
    if held and held["token"] != self.ours["token"]:
      age = time.time() - held["renewed"]
      if age < self.ttl_s:
        raise _busy(self.workdir, held, renewed=True)
      print(f"jaxlm: taking over a stale lease of {os.fspath(self.workdir)} (host {held['host']}, "
            f"pid {held['pid']}, last renewed {age:.0f} s ago)", file=sys.stderr)
    storage.write_atomic(self.file, json.dumps(self.ours))
    time.sleep(self.settle_s)  # a concurrent taker's write lands within this, and only one wins
    held = self._read()
    if not held or held["token"] != self.ours["token"]:
      raise _busy(self.workdir, held, renewed=True)
    self.stop.clear()
    self.thread = threading.Thread(target=self._renew, name="jaxlm-lease", daemon=True)
    self.thread.start()

  def _renew(self) -> None:
    """Keeps the lease fresh. A lost lease or a failed write is reported, never fatal: the run
    itself is fine, and killing hours of training over a lock would be worse."""
    while not self.stop.wait(self.renew_s):
      try:
        held = self._read()
        if held and held["token"] != self.ours["token"]:
          print(f"jaxlm: warning: the lease of {os.fspath(self.workdir)} was taken over by host "
                f"{held['host']}, pid {held['pid']}; both may now write to it", file=sys.stderr)
          return
        self.ours["renewed"] = time.time()
        storage.write_atomic(self.file, json.dumps(self.ours))
      except Exception as e:  # noqa: BLE001 - a network blip; the next renewal retries
        print(f"jaxlm: warning: cannot renew the lease of {os.fspath(self.workdir)} "
              f"({type(e).__name__}: {e})".replace("\n", " "), file=sys.stderr)

  def __exit__(self, *exc) -> None:
    if self.fd is not None:
      # The file stays: unlinking it would race with a process that has just opened it and is
      # about to flock it, while a third creates a new file and locks that: two holders.
      fcntl.flock(self.fd, fcntl.LOCK_UN)
      os.close(self.fd)
      self.fd = None
    if self.thread is not None:
      self.stop.set()
      self.thread.join()
      self.thread = None
      try:
        held = self._read()
        if held and held["token"] == self.ours["token"]:
          self.file.unlink()
      except OSError:
        pass  # a lease we cannot delete goes stale after ttl_s
