"""Fake gcloud, srun, scontrol, sbatch and jaxlm executables for the launch/ script tests.

The fakes log their argv (one JSON list a line) and act out a tiny cloud: queued resources that
become ACTIVE, a training command that fails once through a preemption and then succeeds, srun
exiting 75. No network, no cloud tools, a few seconds in all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
TPU = LAUNCH / "tpu.sh"
GPU = LAUNCH / "gpu_local.sh"
SLURM = LAUNCH / "slurm.sbatch"
SCRIPTS = [TPU, GPU, SLURM]

FAKE = r'''
import json, os, sys
prog = os.path.basename(sys.argv[0])
argv = sys.argv[1:]
state = os.environ["FAKE_STATE"]

def path(name):
  return os.path.join(state, name)

def read(name, default=None):
  try:
    with open(path(name)) as f:
      return f.read().strip()
  except FileNotFoundError:
    return default

def write(name, text):
  with open(path(name), "w") as f:
    f.write(text)

def pop(name, default):
  lines = (read(name) or "").splitlines()
  if not lines:
    return default
  write(name, "\n".join(lines[1:]))
  return lines[0]

entry = [prog] + argv
if prog == "jaxlm":
  entry.append({k: os.environ.get(k) for k in ("XLA_PYTHON_CLIENT_MEM_FRACTION",
                                               "CUDA_VISIBLE_DEVICES")})
with open(path("calls.jsonl"), "a") as f:
  f.write(json.dumps(entry) + "\n")

def not_found():
  print("ERROR: (gcloud) NOT_FOUND: Resource not found", file=sys.stderr)
  sys.exit(1)

if prog == "srun":
  sys.exit(int(os.environ.get("FAKE_SRUN_RC", "0")))
if prog == "jaxlm":
  sys.exit(int(os.environ.get("FAKE_JAXLM_RC", "0")))
if prog != "gcloud":
  sys.exit(0)

group, verb = argv[2], argv[3]
if group == "queued-resources":
  if verb == "create":
    states = (read("after_create") or "ACTIVE").splitlines()
    write("qr_state", states[0])
    write("qr_queue", "\n".join(states[1:]))
    write("node_state", "READY")
  elif verb == "describe":  # prints the state, then moves on to the next queued one
    current = read("qr_state")
    if current is None:
      not_found()
    print(current)
    nxt = pop("qr_queue", None)
    if nxt:
      write("qr_state", nxt)
  elif verb == "delete":
    for name in ("qr_state", "node_state", "qr_queue"):
      if os.path.exists(path(name)):
        os.remove(path(name))
elif group == "tpu-vm":
  if verb == "describe":
    current = read("node_state")
    if current is None:
      not_found()
    print(current)
  elif verb == "scp":
    with open(argv[4], "rb") as src, open(path("scp_copy.tar.gz"), "wb") as dst:
      dst.write(src.read())
  elif verb == "ssh":
    command = next(a for a in argv if a.startswith("--command="))
    if "jaxlm train" in command:
      rc = int(pop("train_rcs", "0"))
      if rc and os.path.exists(path("preempt_on_fail")):
        write("qr_state", "SUSPENDED")
        write("node_state", "PREEMPTED")
      print(f"fake training exits {rc}")
      sys.exit(rc)
'''


@pytest.fixture
def fake(tmp_path):
  """A PATH with the fakes first; .run(script, *args) runs a launch script against them."""
  bin_dir, state = tmp_path / "bin", tmp_path / "state"
  bin_dir.mkdir()
  state.mkdir()
  source = f"#!{sys.executable} -S\n{FAKE}"
  for name in ("gcloud", "srun", "scontrol", "sbatch", "jaxlm"):
    exe = bin_dir / name
    exe.write_text(source)
    exe.chmod(0o755)

  class Fake:
    dir = state

    def __init__(self):
      self.env = {k: v for k, v in os.environ.items()
                  if not k.startswith(("TPU_", "SLURM_", "JAXLM_")) and k not in
                  ("DRY_RUN", "CUDA_VISIBLE_DEVICES", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                   "MAX_REQUEUES")}
      self.env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
      self.env["FAKE_STATE"] = str(state)

    def run(self, script, *args, **env):
      return subprocess.run(["bash", str(script), *map(str, args)], capture_output=True,
                            text=True, timeout=60, env={**self.env, **env}, cwd=tmp_path)

    def set(self, name, text):
      (state / name).write_text(text)

    def calls(self):
      log = state / "calls.jsonl"
      return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def gcloud(self):
      """gcloud calls as short names: 'qr create', 'qr describe', 'ssh train', 'ssh setup', ..."""
      out = []
      for c in self.calls():
        if c[0] != "gcloud":
          continue
        group = {"queued-resources": "qr", "tpu-vm": "vm"}[c[3]]
        if c[4] == "ssh":
          command = next(a for a in c if a.startswith("--command="))
          out.append("ssh train" if "jaxlm train" in command else
                     "ssh stop" if "pkill" in command else "ssh setup")
        else:
          out.append(f"{group} {c[4]}")
      return out

  return Fake()


def lines(text):
  return text.strip().splitlines()


TRAIN = ["jaxlm", "train", "--config", "configs/gpt2_124m.py", "--workdir", "gs://b/run1"]
RUN_COMMAND = ("--command=cd $HOME/jaxlm && . $HOME/jaxlm-venv/bin/activate && exec "
               "jaxlm train --config configs/gpt2_124m.py --workdir gs://b/run1")
LOC = ["--name", "my-tpu", "--zone", "us-central2-b"]
GIT = ["--repo", "https://github.com/example/jaxlm.git"]
FAST = ["--poll", "0", "--retry-delay", "0"]
