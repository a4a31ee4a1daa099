"""Every launch/ script: strict bash, --help, one-line usage errors; gpu_local.sh and
slurm.sbatch against fake tools (see launch_fakes.py)."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers.launch_fakes import GPU, LAUNCH, LOC, SCRIPTS, SLURM, TPU, lines


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
