"""Two processes x 2 CPU devices, joined by jax.distributed (gloo), train like one process
with 4 devices, and checkpoint and resume together."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from conftest import REPO

TINY = REPO / "configs/tiny.py"


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _args(workdir: Path, shared_data: Path, cache: Path, steps: int) -> list[str]:
  overrides = {"steps": steps, "batch_size": 8, "seq_len": 64, "log_every": 1,
               "eval_every": 0, "eval_batches": 1, "checkpoint_every": 3,
               "model.vocab_size": 512, "optimizer.warmup_steps": 2, "objective": "mlm",
               "data.source": f"text:{shared_data}/corpus/inaugural",
               "data.cache_dir": cache, "mesh.data": 2, "mesh.fsdp": 2}
  return [sys.executable, "-m", "jaxlm", "train", "--config", str(TINY), "--workdir",
          str(workdir), "--quiet", *[f"--config.{k}={v}" for k, v in overrides.items()]]


def _env(devices: int) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  return env


def _run_two_processes(args: list[str]) -> None:
  port = _free_port()
  procs = [subprocess.Popen(args + ["--coordinator_address", f"127.0.0.1:{port}",
                                    "--num_processes", "2", "--process_id", str(i)],
                            env=_env(2), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=400) for p in procs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]


def _losses(workdir: Path) -> dict[int, float]:
  losses = {}
  for line in (workdir / "metrics.jsonl").read_text().splitlines():
    event = json.loads(line)
    if event["split"] == "train":
      losses[event["step"]] = event["loss"]
  return losses


def test_two_processes_train_like_one_and_resume_together(shared_data, tmp_path):
  single = tmp_path / "single"
  # One cache: both runs get the very same trained tokenizer.
  result = subprocess.run(_args(single, shared_data, tmp_path / "cache", 6), env=_env(4),
                          cwd=REPO, capture_output=True, text=True, timeout=400)
  assert result.returncode == 0, result.stderr[-3000:]
  expected = _losses(single)
  assert sorted(expected) == [1, 2, 3, 4, 5, 6]

  multi = tmp_path / "multi"
  _run_two_processes(_args(multi, shared_data, tmp_path / "cache", 6))
  losses = _losses(multi)
  assert sorted(losses) == sorted(expected)  # process 0 logs; process 1 writes nothing
  for step, loss in expected.items():
    assert abs(losses[step] - loss) < 1e-5 * max(1.0, abs(loss)), (step, losses[step], loss)
  setup = [json.loads(l) for l in (multi / "metrics.jsonl").read_text().splitlines()][0]
  assert setup["devices"] == 4 and setup["mesh"] == {"data": 2, "fsdp": 2, "tensor": 1}

  # Both processes saved checkpoint 3 and 6; lose 6 and restart both: they resume at 3.
  assert sorted(p.name for p in (multi / "checkpoints").iterdir()) == ["3", "6"]
  assert sorted(p.name for p in (multi / "checkpoints/6/data").glob("*.json")) == [
    "process_0-of-2.json", "process_1-of-2.json"]  # each host's iterator position
  shutil.rmtree(multi / "checkpoints/6")
  (multi / "metrics.jsonl").unlink()
  _run_two_processes(_args(multi, shared_data, tmp_path / "cache", 6))
  resumed = _losses(multi)
  assert sorted(resumed) == [4, 5, 6]
  for step in (4, 5, 6):
    assert abs(resumed[step] - losses[step]) < 1e-6 * max(1.0, abs(losses[step]))
