"""Two processes x 2 CPU devices, joined by jax.distributed (gloo), train like one process
with 4 devices, and checkpoint and resume together."""

import json
import shutil
import subprocess
from pathlib import Path

from conftest import REPO
from helpers.cli import cpu_env, logged_losses, run_two_processes, train_args


def _losses(workdir: Path) -> dict[int, float]:
  return logged_losses((workdir / "metrics.jsonl").read_text())


def test_two_processes_train_like_one_and_resume_together(corpus, tmp_path):
  single = tmp_path / "single"
  # One cache: both runs get the very same trained tokenizer.
  result = subprocess.run(train_args(single, corpus, tmp_path / "cache", 6), env=cpu_env(4),
                          cwd=REPO, capture_output=True, text=True, timeout=400)
  assert result.returncode == 0, result.stderr[-3000:]
  expected = _losses(single)
  assert sorted(expected) == [1, 2, 3, 4, 5, 6]

  multi = tmp_path / "multi"
  run_two_processes(train_args(multi, corpus, tmp_path / "cache", 6))
  losses = _losses(multi)
  assert sorted(losses) == sorted(expected)  # process 0 logs; process 1 writes nothing
  for step, loss in expected.items():
    assert abs(losses[step] - loss) < 1e-5 * max(1.0, abs(loss)), (step, losses[step], loss)
  setup = [json.loads(line) for line in (multi / "metrics.jsonl").read_text().splitlines()][0]
  assert setup["devices"] == 4 and setup["mesh"] == {"data": 2, "fsdp": 2, "tensor": 1}

  # Both processes saved checkpoint 3 and 6; lose 6 and restart both: they resume at 3.
  assert sorted(p.name for p in (multi / "checkpoints").iterdir()) == ["3", "6"]
  assert sorted(p.name for p in (multi / "checkpoints/6/data").glob("*.json")) == [
    "process_0-of-2.json", "process_1-of-2.json"]  # each host's iterator position
  shutil.rmtree(multi / "checkpoints/6")
  (multi / "metrics.jsonl").unlink()
  run_two_processes(train_args(multi, corpus, tmp_path / "cache", 6))
  resumed = _losses(multi)
  assert sorted(resumed) == [4, 5, 6]
  for step in (4, 5, 6):
    assert abs(resumed[step] - losses[step]) < 1e-6 * max(1.0, abs(losses[step]))
