"""A run directory belongs to one process: a second `jaxlm train` on a live workdir is refused
in one line naming the holder, and the first run ends exactly as an undisturbed one."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import REPO
from helpers.cli import logged_losses

from jaxlm import lease, sharding
from jaxlm.config import MeshConfig, load_config
from jaxlm.train.checkpoint import restore_params
from jaxlm.train.loop import train

pytestmark = pytest.mark.e2e

OVERRIDES = {"steps": "40", "batch_size": "8", "seq_len": "64", "log_every": "1",
             "eval_every": "0", "eval_batches": "1", "data.vocab_size": "512",
             "optimizer.warmup_steps": "5", "checkpoint_every": "10", "mesh.data": "-1"}


def _command(workdir, overrides) -> list[str]:
  return [sys.executable, "-m", "jaxlm", "train", "--config", "tiny", "--workdir", str(workdir),
          "--quiet", *[f"--config.{k}={v}" for k, v in overrides.items()]]


def _holder(workdir) -> int | None:
  """The pid the workdir's lease names, once it is written whole."""
  try:
    return json.loads((workdir / lease.FILE).read_text())["pid"]
  except (OSError, ValueError, KeyError):
    return None


def _params(run_dir):
  mesh = sharding.make_mesh(MeshConfig(1, 1, 1), jax.devices()[:1])
  return jax.tree.leaves(restore_params(run_dir, mesh)[1])


def test_a_second_process_is_refused_and_the_first_run_is_undisturbed(tmp_path, corpus):
  overrides = {**OVERRIDES, "data.source": f"text:{corpus}/tinyshakespeare",
               "data.cache_dir": str(tmp_path / "cache")}
  workdir = tmp_path / "run"
  first = subprocess.Popen(_command(workdir, overrides), cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
  # Once the first run holds the workdir, pause it (SIGSTOP keeps its lock; the pause changes
  # nothing it computes), start the second, and let the first go on: no race on who is faster.
  deadline = time.time() + 240
  while _holder(workdir) != first.pid:
    assert first.poll() is None, first.stderr.read()
    assert time.time() < deadline, "the first run never took its workdir"
    time.sleep(0.02)
  os.kill(first.pid, signal.SIGSTOP)
  try:
    second = subprocess.run(_command(workdir, overrides), cwd=REPO, capture_output=True,
                            text=True, timeout=120)
  finally:
    os.kill(first.pid, signal.SIGCONT)
  assert second.returncode == 2, second.stderr
  lines = [line for line in second.stderr.splitlines() if line.startswith("jaxlm: error:")]
  assert len(lines) == 1 and f"pid {first.pid}" in lines[0] and "in use by jaxlm train" in lines[0]
  assert first.wait(timeout=300) == 0, first.stderr.read()

  alone = tmp_path / "alone"
  train(load_config("tiny", overrides), alone, quiet=True)
  events = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  steps = [e["step"] for e in events if e["split"] == "train"]
  assert steps == list(range(1, 41))  # one writer: no interleaved or repeated rows
  assert logged_losses((workdir / "metrics.jsonl").read_text()) == logged_losses(
    (alone / "metrics.jsonl").read_text())
  assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == sorted(
    p.name for p in (alone / "checkpoints").iterdir())
  for a, b in zip(_params(workdir), _params(alone), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The lease ended with its process: the workdir can be resumed at once.
  again = subprocess.run(_command(workdir, overrides), cwd=REPO, capture_output=True, text=True,
                         timeout=300)
  assert again.returncode == 0, again.stderr


def test_a_workdir_that_cannot_be_created_is_one_line(tmp_path):
  (tmp_path / "file").write_text("x")
  result = subprocess.run(_command(tmp_path / "file" / "run", {}), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines() == [
    f"jaxlm: error: --workdir {tmp_path / 'file' / 'run'}: cannot create it (Not a directory)"]
