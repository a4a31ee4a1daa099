"""Running jaxlm commands as processes (one, or several joined by jax.distributed over gloo),
and reading the losses they log."""

import json
import os
import socket
import subprocess
import sys

from conftest import REPO


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def cpu_env(devices: int, extra: dict[str, str] | None = None) -> dict[str, str]:
  """This environment with `devices` fake CPU devices per process."""
  return {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
          "JAX_PLATFORMS": "cpu", **(extra or {})}


def run_two_processes(args: list[str], extra_env: dict[str, str] | None = None) -> None:
  """`args` as processes 0 and 1 of one job, 2 CPU devices each; both must exit 0."""
  port = free_port()
  procs = [subprocess.Popen(args + ["--coordinator_address", f"127.0.0.1:{port}",
                                    "--num_processes", "2", "--process_id", str(i)],
                            env=cpu_env(2, extra_env), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  outputs = [p.communicate(timeout=400) for p in procs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]


def train_args(workdir, corpus, cache, steps: int) -> list[str]:
  """`jaxlm train` of the tiny MLM model on a 2 x 2 (data x fsdp) mesh, checkpoints every 3."""
  overrides = {"steps": steps, "batch_size": 8, "seq_len": 64, "log_every": 1,
               "eval_every": 0, "eval_batches": 1, "checkpoint_every": 3,
               "data.vocab_size": 512, "optimizer.warmup_steps": 2, "objective": "mlm",
               "data.source": f"text:{corpus}/inaugural",
               "data.cache_dir": cache, "mesh.data": 2, "mesh.fsdp": 2}
  return [sys.executable, "-m", "jaxlm", "train", "--config", str(REPO / "configs/tiny.py"),
          "--workdir", str(workdir), "--quiet",
          *[f"--config.{k}={v}" for k, v in overrides.items()]]


def logged_losses(metrics_jsonl: str) -> dict[int, float]:
  """{step: loss} from a metrics.jsonl text, the last line for each step winning (a resumed run
  logs again the steps after its checkpoint)."""
  events = (json.loads(line) for line in metrics_jsonl.splitlines())
  return {e["step"]: e["loss"] for e in events if e["split"] == "train"}
