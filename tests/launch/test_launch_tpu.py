"""launch/tpu.sh against fake gcloud (see launch_fakes.py): dry runs and acted-out runs."""

from __future__ import annotations

import tarfile

import pytest
from helpers.launch_fakes import FAST, GIT, LOC, RUN_COMMAND, TPU, TRAIN, lines


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
