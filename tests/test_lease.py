"""A run directory is owned by one process: jaxlm.lease, on a local disk (flock) and with the
Cloud Storage lease-file protocol (exercised on a local directory, and once on the emulator)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO

from jaxlm.errors import ConfigError
from jaxlm.lease import FILE, Lease, WorkdirBusy


def _one_line(e: pytest.ExceptionInfo) -> str:
  message = str(e.value)
  assert "\n" not in message
  return message


def test_a_second_lease_is_refused_naming_the_holder_until_the_first_ends(tmp_path):
  workdir = tmp_path / "run"
  with Lease(workdir, command="train"):
    held = json.loads((workdir / FILE).read_text())
    assert held["pid"] == os.getpid() and held["command"] == "train"
    # A second fd in the same process conflicts too (flock locks belong to open files).
    with pytest.raises(WorkdirBusy) as e, Lease(str(workdir), command="compare"):
      pass
    message = _one_line(e)
    assert message.startswith(f"{workdir} is in use by jaxlm train on host {socket.gethostname()}, "
                              f"pid {os.getpid()}, since ")
    assert "UTC" in message and message.endswith("use another --workdir")
    with Lease(workdir / "pretrain" / "mlm", command="train"):  # a subdirectory is another run
      pass
  with Lease(workdir, command="train"):
    pass


def test_a_killed_holder_never_blocks_a_restart(tmp_path):
  code = ("import sys, time; from jaxlm.lease import Lease\n"
          "with Lease(sys.argv[1], command='train'):\n"
          "  print('held', flush=True); time.sleep(60)\n")
  child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO,
                           stdout=subprocess.PIPE, text=True)
  try:
    assert child.stdout.readline().strip() == "held"
    with (pytest.raises(WorkdirBusy, match=f"pid {child.pid}, since "),
          Lease(tmp_path, command="train")):
      pass
  finally:
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
  with Lease(tmp_path, command="train"):  # at once: the kernel dropped the dead holder's flock
    assert json.loads((tmp_path / FILE).read_text())["pid"] == os.getpid()


def test_a_non_holder_process_does_nothing(tmp_path):
  with (Lease(tmp_path / "run", command="train", holder=False),
        Lease(tmp_path / "run", command="train", holder=False)):
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("where", ["under_a_file", "is_a_file"])
def test_a_workdir_that_cannot_be_created_is_one_config_error(tmp_path, where):
  (tmp_path / "f").write_text("x")
  workdir = tmp_path / "f" / "run" if where == "under_a_file" else tmp_path / "f"
  with pytest.raises(ConfigError) as e, Lease(workdir, command="train"):
    pass
  assert _one_line(e).startswith(f"--workdir {workdir}: cannot create it (")
  assert not isinstance(e.value, WorkdirBusy)


def _lease_file(workdir, **kwargs) -> Lease:
  return Lease(workdir, command="train", mode="lease_file", settle_s=0, **kwargs)


def test_lease_file_refuses_a_second_holder_and_is_deleted_on_release(tmp_path):
  with _lease_file(tmp_path):
    with pytest.raises(WorkdirBusy) as e, _lease_file(tmp_path):
      pass
    assert f"pid {os.getpid()}, since " in _one_line(e)
    assert "(lease renewed 0 s ago)" in str(e.value)
  assert not (tmp_path / FILE).exists()


def test_lease_file_renewal_keeps_it_alive_past_its_ttl(tmp_path):
  with _lease_file(tmp_path, ttl_s=0.4, renew_s=0.1):
    first = json.loads((tmp_path / FILE).read_text())
    time.sleep(0.5)
    renewed = json.loads((tmp_path / FILE).read_text())
    assert renewed["renewed"] > first["renewed"] and renewed["since"] == first["since"]
    with pytest.raises(WorkdirBusy), _lease_file(tmp_path, ttl_s=0.4):
      pass


def test_a_stale_lease_file_is_taken_over(tmp_path, capsys):
  stale = {"host": "elsewhere", "pid": 99, "command": "train", "since": time.time() - 900,
           "renewed": time.time() - 300, "token": "dead"}
  (tmp_path / FILE).write_text(json.dumps(stale))
  with _lease_file(tmp_path):
    assert json.loads((tmp_path / FILE).read_text())["pid"] == os.getpid()
  assert capsys.readouterr().err == (f"jaxlm: taking over a stale lease of {tmp_path} "
                                     "(host elsewhere, pid 99, last renewed 300 s ago)\n")


def test_lease_file_loses_a_simultaneous_take_to_the_last_writer(tmp_path, monkeypatch):
  """Two takers both saw no lease and wrote theirs; the one overwritten backs off."""
  other = {"host": "rival", "pid": 7, "command": "scale", "since": time.time(),
           "renewed": time.time(), "token": "rival"}
  monkeypatch.setattr(time, "sleep", lambda s: (tmp_path / FILE).write_text(json.dumps(other)))
  with (pytest.raises(WorkdirBusy, match="jaxlm scale on host rival, pid 7, since "),
        _lease_file(tmp_path)):
    pass
  assert json.loads((tmp_path / FILE).read_text())["token"] == "rival"  # the winner's stays


@pytest.mark.e2e
def test_a_gs_workdir_is_leased_on_the_gcs_emulator(monkeypatch):
  gcsfs = pytest.importorskip("gcsfs")
  pytest.importorskip("gcp_storage_emulator")
  from helpers.cli import free_port
  from helpers.gcs_emulator import gcs_env

  from jaxlm import storage

  port = free_port()
  server = subprocess.Popen([sys.executable, str(REPO / "tests/helpers/gcs_emulator.py"),
                             str(port), "jaxlm-test"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
  try:
    assert server.stdout.readline().strip() == "ready"
    for key, value in gcs_env(port).items():
      monkeypatch.setenv(key, value)
    gcsfs.GCSFileSystem.clear_instance_cache()  # a cached one reads another emulator's port
    workdir = "gs://jaxlm-test/runs/leased"
    with Lease(workdir, command="train", settle_s=0):
      with (pytest.raises(WorkdirBusy, match=f"^{workdir} is in use by jaxlm train .* pid "),
            Lease(workdir, command="train", settle_s=0)):
        pass
    assert not storage.path(f"{workdir}/{FILE}").exists()
  finally:
    gcsfs.GCSFileSystem.clear_instance_cache()
    server.kill()
    server.wait()
