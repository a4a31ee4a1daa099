"""The launch/ scripts, run against fake gcloud, srun, scontrol, sbatch and jaxlm executables.

The fakes log their argv (one JSON list a line) and act out a tiny cloud: queued resources that
become ACTIVE, a training command that fails once through a preemption and then succeeds, srun
exiting 75. No network, no cloud tools, a few seconds in all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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


# ------------------------------------------------------------------------------ all scripts
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_strict_executable_bash(script):
  text = script.read_text()
  assert text.startswith("#!/usr/bin/env bash\n")
  assert "\nset -euo pipefail\n" in text
  assert os.access(script, os.X_OK)
  subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("args", [[TPU, "--help"], [TPU, "create", "-h"], [GPU, "--help"],
                                  [SLURM, "--help"], [SLURM, "-h", "--config", "c"]],
                         ids=lambda a: " ".join(map(str, a)).replace(str(LAUNCH) + "/", ""))
def test_help_exits_0(fake, args):
  r = fake.run(*args)
  assert r.returncode == 0, r.stderr
  assert r.stdout.startswith("Usage:")
  assert fake.calls() == []


@pytest.mark.parametrize("script,args,message", [
    (TPU, [], "missing COMMAND"),
    (TPU, ["launch", *LOC], "unknown COMMAND 'launch'"),
    (TPU, ["create", "--zone", "z", "--accelerator-type", "v4-8"], "--name is required"),
    (TPU, ["create", "--name", "n", "--accelerator-type", "v4-8"], "--zone is required"),
    (TPU, ["create", *LOC], "--accelerator-type is required"),
    (TPU, ["create", *LOC, "--accelerator-type", "v9-8"], "--runtime-version is required"),
    (TPU, ["run", *LOC], "run needs the command to run after --"),
    (TPU, ["babysit", *LOC, "--accelerator-type", "v4-8"], "babysit needs the command"),
    (TPU, ["run", *LOC, "--bogus", "--", "true"], "unknown option: --bogus"),
    (TPU, ["run", *LOC, "--zone"], "--zone needs a value"),
    (TPU, ["run", *LOC, "jaxlm", "train"], "unexpected argument 'jaxlm'"),
    (TPU, ["babysit", *LOC, "--accelerator-type", "v4-8", "--max-attempts=x", "--", "true"],
     "--max-attempts must be a whole number"),
    (GPU, [], "missing --config"),
    (GPU, ["--config", "configs/tiny.py"], "missing --workdir"),
    (GPU, ["--config", "c", "--workdir", "w", "--mem-fraction", "2"], "--mem-fraction"),
    (SLURM, [], "missing --config"),
    (SLURM, ["--config.model.num_layers=2", "--workdir", "w"], "missing --config"),
    (SLURM, ["--config", "c"], "missing --workdir"),
    (SLURM, ["--config", "c", "--workdir", "w"], "not inside a SLURM job"),
])
def test_bad_usage_is_one_line_and_exit_2(fake, script, args, message):
  r = fake.run(script, *args)
  assert r.returncode == 2
  assert len(lines(r.stderr)) == 1, r.stderr
  assert r.stderr.startswith(f"{script.name}: error: ")
  assert message in r.stderr
  assert r.stdout == ""
  assert fake.calls() == []


# ------------------------------------------------------------------------------ dry runs
@pytest.mark.parametrize("how", ["flag", "env"])
def test_tpu_create_dry_run_prints_the_gcloud_commands(fake, how):
  args = ["create", *LOC, "--accelerator-type", "v4-8", "--spot", "--project", "p"]
  r = fake.run(TPU, "--dry-run", *args) if how == "flag" else fake.run(TPU, *args, DRY_RUN="1")
  assert r.returncode == 0, r.stderr
  assert lines(r.stdout) == [
      "+ gcloud compute tpus queued-resources create my-tpu --node-id my-tpu --zone us-central2-b"
      " --project p --accelerator-type v4-8 --runtime-version tpu-ubuntu2204-base --spot",
      "+ gcloud compute tpus queued-resources describe my-tpu --zone us-central2-b --project p"
      " --format='value(state.state)'",
  ]
  assert fake.calls() == []


@pytest.mark.parametrize("accelerator,runtime", [("v4-32", "tpu-ubuntu2204-base"),
                                                 ("v5litepod-8", "v2-alpha-tpuv5-lite"),
                                                 ("v6e-8", "v2-alpha-tpuv6e")])
def test_tpu_runtime_version_follows_the_accelerator(fake, accelerator, runtime):
  r = fake.run(TPU, "create", *LOC, "--accelerator-type", accelerator, "--qr-id", "q1",
               DRY_RUN="1")
  assert lines(r.stdout)[0] == (
      "+ gcloud compute tpus queued-resources create q1 --node-id my-tpu --zone us-central2-b"
      f" --accelerator-type {accelerator} --runtime-version {runtime}")
  r = fake.run(TPU, "create", *LOC, "--accelerator-type", accelerator,
               "--runtime-version=my-image", DRY_RUN="1")
  assert lines(r.stdout)[0].endswith("--runtime-version my-image")


def test_tpu_run_dry_run_quotes_the_remote_command(fake):
  r = fake.run(TPU, "run", *LOC, "--dry-run", "--", *TRAIN, "--config.data.source=text:/my data")
  assert r.returncode == 0, r.stderr
  assert lines(r.stdout) == [
      "+ gcloud compute tpus tpu-vm ssh my-tpu --zone us-central2-b --worker=all "
      "--command='cd $HOME/jaxlm && . $HOME/jaxlm-venv/bin/activate && exec jaxlm train "
      "--config configs/gpt2_124m.py --workdir gs://b/run1 "
      "--config.data.source='\\''text:/my data'\\'''"]
  assert fake.calls() == []


def test_tpu_babysit_dry_run_shows_one_attempt(fake):
  r = fake.run(TPU, "babysit", *LOC, "--accelerator-type", "v4-8", "--spot", *GIT, "--",
               *TRAIN, DRY_RUN="1")
  assert r.returncode == 0, r.stderr
  out = lines(r.stdout)
  assert all(line.startswith("+ gcloud compute tpus ") for line in out)
  assert [line.split()[4:6] for line in out] == [
      ["queued-resources", "describe"], ["queued-resources", "create"],
      ["queued-resources", "describe"], ["tpu-vm", "ssh"], ["tpu-vm", "ssh"]]
  assert "--spot" in out[1]
  assert "git clone --depth 1 https://github.com/example/jaxlm.git $HOME/jaxlm" in out[3]
  assert out[4].endswith("exec jaxlm train --config configs/gpt2_124m.py --workdir gs://b/run1'")
  assert fake.calls() == []


def test_tpu_setup_dry_run_with_a_local_checkout(fake, tmp_path):
  r = fake.run(TPU, "setup", *LOC, "--repo", tmp_path, DRY_RUN="1")
  assert r.returncode == 0, r.stderr
  out = lines(r.stdout)
  assert out[0].startswith(f"+ tar -C {tmp_path} -czf ")
  assert out[1].startswith("+ gcloud compute tpus tpu-vm scp ")
  assert out[1].endswith("my-tpu:jaxlm.tar.gz --zone us-central2-b --worker=all")
  assert out[2].startswith("+ gcloud compute tpus tpu-vm ssh my-tpu --zone us-central2-b "
                           "--worker=all --command=")
  assert "tar -xzf jaxlm.tar.gz -C $HOME/jaxlm" in out[2]
  assert len(out) == 3
  assert fake.calls() == []


@pytest.mark.parametrize("sub,expected", [
    ("stop", "+ gcloud compute tpus tpu-vm ssh my-tpu --zone us-central2-b --worker=all "
             "--command='pkill -TERM -f \"[j]axlm train\" || true'"),
    ("delete", "+ gcloud compute tpus queued-resources delete my-tpu --zone us-central2-b "
               "--force --quiet"),
])
def test_tpu_stop_and_delete_dry_run(fake, sub, expected):
  r = fake.run(TPU, sub, *LOC, "--dry-run")
  assert lines(r.stdout) == [expected]
  assert fake.calls() == []


def test_gpu_local_dry_run(fake):
  r = fake.run(GPU, "--dry-run", "--gpu", "1", "--config", "configs/tiny.py", "--workdir",
               "runs/my run", "--config.optimizer.lr=3e-4")
  assert r.returncode == 0, r.stderr
  assert lines(r.stdout) == [
      "+ env XLA_PYTHON_CLIENT_MEM_FRACTION=0.9 CUDA_VISIBLE_DEVICES=1 jaxlm train "
      "--config configs/tiny.py --workdir 'runs/my run' --config.optimizer.lr=3e-4"]
  r = fake.run(GPU, "--mem-fraction=.5", "--", "--config=c", "--workdir=w", DRY_RUN="1")
  assert lines(r.stdout) == ["+ env XLA_PYTHON_CLIENT_MEM_FRACTION=.5 jaxlm train "
                             "--config=c --workdir=w"]
  assert fake.calls() == []


def test_slurm_dry_run(fake):
  args = ["--config", "configs/gpt2_124m.py", "--workdir", "/shared/runs/gpt2"]
  for r in (fake.run(SLURM, "--dry-run", *args), fake.run(SLURM, *args, DRY_RUN="1")):
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout) == [
        "+ srun jaxlm train --config configs/gpt2_124m.py --workdir /shared/runs/gpt2"]
  assert fake.calls() == []


# ------------------------------------------------------------------------------ TPU, for real
def test_tpu_create_waits_until_active(fake):
  fake.set("after_create", "WAITING_FOR_RESOURCES\nPROVISIONING\nACTIVE")
  r = fake.run(TPU, "create", *LOC, "--accelerator-type", "v4-8", "--spot", "--poll", "0",
               "--create-flag=--reserved")
  assert r.returncode == 0, r.stderr
  calls = fake.calls()
  assert calls[0] == ["gcloud", "compute", "tpus", "queued-resources", "create", "my-tpu",
                      "--node-id", "my-tpu", "--zone", "us-central2-b", "--accelerator-type",
                      "v4-8", "--runtime-version", "tpu-ubuntu2204-base", "--spot", "--reserved"]
  assert fake.gcloud() == ["qr create"] + ["qr describe"] * 3
  assert calls[1][-1] == "--format=value(state.state)"
  assert "is ACTIVE" in r.stderr


def test_tpu_create_without_spot_and_failing(fake):
  fake.set("after_create", "WAITING_FOR_RESOURCES\nFAILED")
  r = fake.run(TPU, "create", *LOC, "--accelerator-type", "v5litepod-8", "--poll", "0")
  assert r.returncode == 1
  assert "--spot" not in fake.calls()[0]
  assert "v2-alpha-tpuv5-lite" in fake.calls()[0]
  assert "is FAILED" in r.stderr


def test_tpu_setup_copies_a_local_checkout_to_every_worker(fake, tmp_path):
  src = tmp_path / "src"
  (src / "jaxlm").mkdir(parents=True)
  (src / "pyproject.toml").write_text("[project]\nname = 'jaxlm'\n")
  (src / "jaxlm" / "__init__.py").write_text("")
  for skipped in (".venv", ".git", "runs"):
    (src / skipped).mkdir()
    (src / skipped / "big").write_text("x")
  r = fake.run(TPU, "setup", *LOC, "--repo", src)
  assert r.returncode == 0, r.stderr
  scp, ssh = fake.calls()
  assert scp[1:5] == ["compute", "tpus", "tpu-vm", "scp"]
  assert scp[6:] == ["my-tpu:jaxlm.tar.gz", "--zone", "us-central2-b", "--worker=all"]
  with tarfile.open(fake.dir / "scp_copy.tar.gz") as tar:
    names = {n.lstrip("./") for n in tar.getnames()} - {""}
  assert names == {"pyproject.toml", "jaxlm", "jaxlm/__init__.py"}
  assert ssh[:9] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "my-tpu", "--zone",
                     "us-central2-b", "--worker=all"]
  command = ssh[9]
  assert "tar -xzf jaxlm.tar.gz -C $HOME/jaxlm" in command
  assert "uv venv --python 3.12 $HOME/jaxlm-venv" in command
  assert 'uv pip install --python $HOME/jaxlm-venv/bin/python -e ".[tpu]"' in command


def test_tpu_setup_clones_a_git_url(fake):
  r = fake.run(TPU, "setup", *LOC, "--repo", "git+https://github.com/example/jaxlm.git",
               "--ref", "v0.1", "--python", "3.11", "--project", "p")
  assert r.returncode == 0, r.stderr
  (ssh,) = fake.calls()
  assert ssh[5:11] == ["my-tpu", "--zone", "us-central2-b", "--project", "p", "--worker=all"]
  assert ("git clone --depth 1 --branch v0.1 https://github.com/example/jaxlm.git $HOME/jaxlm"
          in ssh[11])
  assert "uv venv --python 3.11" in ssh[11]


def test_tpu_setup_rejects_a_missing_source(fake, tmp_path):
  r = fake.run(TPU, "setup", *LOC, "--repo", tmp_path / "nope")
  assert r.returncode == 2
  assert "neither a directory nor a git URL" in r.stderr
  assert fake.calls() == []


def test_tpu_run_runs_on_all_workers_and_returns_the_exit_status(fake):
  fake.set("train_rcs", "3")
  r = fake.run(TPU, "run", *LOC, "--", *TRAIN)
  assert r.returncode == 3
  assert fake.calls() == [["gcloud", "compute", "tpus", "tpu-vm", "ssh", "my-tpu", "--zone",
                           "us-central2-b", "--worker=all", RUN_COMMAND]]
  assert "+ gcloud compute tpus tpu-vm ssh my-tpu" in r.stderr  # echoed, like set -x


def test_tpu_babysit_recreates_after_a_preemption(fake):
  fake.set("train_rcs", "1\n0")
  fake.set("preempt_on_fail", "")
  r = fake.run(TPU, "babysit", *LOC, "--accelerator-type", "v4-8", "--spot", *GIT, *FAST,
               "--", *TRAIN)
  assert r.returncode == 0, r.stderr
  assert fake.gcloud() == [
      "qr describe", "qr create", "qr describe", "ssh setup", "ssh train",  # preempted
      "qr describe", "qr delete", "qr create", "qr describe", "ssh setup", "ssh train",  # ok
  ]
  creates = [c for c in fake.calls() if c[4:5] == ["create"]]
  assert all("--spot" in c for c in creates)
  assert [c for c in fake.calls() if c[-1] == RUN_COMMAND][0][8] == "--worker=all"
  assert "attempt 2 of 20" in r.stderr and "attempt 3" not in r.stderr
  assert "SUSPENDED" in r.stderr


def test_tpu_babysit_reruns_on_a_healthy_node_without_recreating(fake):
  fake.set("qr_state", "ACTIVE")
  fake.set("node_state", "READY")
  fake.set("train_rcs", "75\n0")
  r = fake.run(TPU, "babysit", *LOC, "--accelerator-type", "v4-8", *GIT, *FAST, "--", *TRAIN)
  assert r.returncode == 0, r.stderr
  assert fake.gcloud() == ["qr describe", "vm describe", "ssh setup", "ssh train",
                           "qr describe", "vm describe", "ssh train"]
  assert "exited 75" in r.stderr


def test_tpu_babysit_recreates_a_preempted_node_of_an_active_queued_resource(fake):
  fake.set("qr_state", "ACTIVE")
  fake.set("node_state", "PREEMPTED")
  r = fake.run(TPU, "babysit", *LOC, "--accelerator-type", "v4-8", *GIT, *FAST,
               "--delete-on-success", "--", *TRAIN)
  assert r.returncode == 0, r.stderr
  assert fake.gcloud() == ["qr describe", "vm describe", "qr delete", "qr create",
                           "qr describe", "ssh setup", "ssh train", "qr delete"]


def test_tpu_babysit_gives_up_after_max_attempts(fake):
  fake.set("train_rcs", "1\n1\n1\n0")
  fake.set("preempt_on_fail", "")
  r = fake.run(TPU, "babysit", *LOC, "--accelerator-type", "v4-8", *GIT, *FAST,
               "--max-attempts", "2", "--", *TRAIN)
  assert r.returncode == 1
  assert fake.gcloud().count("ssh train") == 2
  assert "giving up after 2 attempts" in lines(r.stderr)[-1]


@pytest.mark.parametrize("rc", [2, 3])
def test_tpu_babysit_does_not_retry_a_bad_config_or_nan_losses(fake, rc):
  fake.set("train_rcs", f"{rc}\n0")
  r = fake.run(TPU, "babysit", *LOC, "--accelerator-type", "v4-8", *GIT, *FAST, "--", *TRAIN)
  assert r.returncode == rc
  assert fake.gcloud().count("ssh train") == 1
  assert "not retrying" in r.stderr


def test_tpu_stop_and_delete(fake):
  assert fake.run(TPU, "stop", *LOC).returncode == 0
  assert fake.run(TPU, "delete", *LOC, "--qr-id", "q1").returncode == 0
  assert fake.calls() == [
      ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "my-tpu", "--zone", "us-central2-b",
       "--worker=all", '--command=pkill -TERM -f "[j]axlm train" || true'],
      ["gcloud", "compute", "tpus", "queued-resources", "delete", "q1", "--zone",
       "us-central2-b", "--force", "--quiet"]]


def test_tpu_settings_from_the_environment(fake):
  r = fake.run(TPU, "status", TPU_NAME="env-tpu", TPU_ZONE="europe-west4-a", TPU_PROJECT="p")
  assert r.returncode == 1  # the fake has no such queued resource
  assert fake.calls()[0][4:] == ["describe", "env-tpu", "--zone", "europe-west4-a",
                                 "--project", "p"]


# ------------------------------------------------------------------------------ GPU, for real
def test_gpu_local_runs_jaxlm_with_the_env_and_its_exit_status(fake):
  r = fake.run(GPU, "--gpu", "1", "--config", "configs/tiny.py", "--workdir", "runs/x",
               "--quiet", FAKE_JAXLM_RC="75")
  assert r.returncode == 75
  assert fake.calls() == [["jaxlm", "train", "--config", "configs/tiny.py", "--workdir", "runs/x",
                           "--quiet", {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.9",
                                       "CUDA_VISIBLE_DEVICES": "1"}]]


def test_gpu_local_keeps_the_callers_settings(fake):
  r = fake.run(GPU, "--config", "c", "--workdir", "w", XLA_PYTHON_CLIENT_MEM_FRACTION="0.5",
               CUDA_VISIBLE_DEVICES="2")
  assert r.returncode == 0, r.stderr
  assert fake.calls()[0][-1] == {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.5",
                                 "CUDA_VISIBLE_DEVICES": "2"}


# ------------------------------------------------------------------------------ SLURM, for real
def test_slurm_header():
  text = SLURM.read_text().splitlines()
  first_command = next(i for i, line in enumerate(text) if line and not line.startswith("#"))
  header = [line for line in text[:first_command] if line.startswith("#SBATCH")]
  assert not any(line.startswith("#SBATCH") for line in text[first_command:])
  for option in ("--nodes=", "--ntasks-per-node=1", "--gpus-per-node=", "--signal=",
                 "--requeue", "--time="):
    assert any(line.startswith(f"#SBATCH {option}") for line in header), option


@pytest.mark.parametrize("srun_rc,restarts,requeued", [(75, "0", True), (75, "50", False),
                                                        (0, "0", False), (1, "0", False)])
def test_slurm_requeues_when_jaxlm_exits_75(fake, srun_rc, restarts, requeued):
  r = fake.run(SLURM, "--config", "configs/gpt2_124m.py", "--workdir", "/shared/run",
               SLURM_JOB_ID="123", SLURM_RESTART_COUNT=restarts, FAKE_SRUN_RC=str(srun_rc))
  assert r.returncode == srun_rc
  expected = [["srun", "jaxlm", "train", "--config", "configs/gpt2_124m.py", "--workdir",
               "/shared/run"]]
  if requeued:
    expected.append(["scontrol", "requeue", "123"])
  assert fake.calls() == expected


def test_readme_covers_every_script():
  readme = (LAUNCH / "README.md").read_text()
  for word in ("tpu.sh create", "tpu.sh setup", "tpu.sh run", "tpu.sh babysit", "tpu.sh delete",
               "gpu_local.sh", "launch/slurm.sbatch", "sbatch --nodes", "v4-8", "v5litepod-8", "v4-32",
               "75"):
    assert word in readme, word
