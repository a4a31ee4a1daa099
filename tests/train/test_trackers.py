"""Trackers: TensorBoard gets the config and every scalar; W&B one run per workdir, continued on
resume, offline without a network; a bad name is one line before anything runs."""

import glob
import struct
import sys
import types

import pytest
from etils import epath
from tensorboardX.proto import event_pb2, plugin_hparams_pb2

from jaxlm.config import ConfigError
from jaxlm.train.trackers import check, open_trackers


def _tensorboard_events(folder):
  """Every Event in the folder's event files (TFRecord: length, crc, data, crc)."""
  events = []
  for name in sorted(glob.glob(f"{folder}/events.out.tfevents.*")):
    data = open(name, "rb").read()
    at = 0
    while at < len(data):
      (length,) = struct.unpack("<Q", data[at:at + 8])
      event = event_pb2.Event()
      event.ParseFromString(data[at + 12:at + 12 + length])
      events.append(event)
      at += 12 + length + 4
  return events


def test_tensorboard_gets_the_config_as_text_and_each_scalar_by_split(tmp_path):
  config = {"objective": "clm", "optimizer": {"lr": 0.002, "schedule": "cosine"},
            "checkpoint_tokens": [1000, 2000], "data": {"cache_dir": None}}
  [board] = open_trackers(("tensorboard",), epath.Path(tmp_path), config)
  board.scalars("train", 10, {"loss": 2.5})
  board.scalars("eval", 10, {"loss": 2.75})
  board.close()
  values = {(v.tag, e.step): v for e in _tensorboard_events(tmp_path / "tensorboard")
            for v in e.summary.value}
  assert values[("train/loss", 10)].simple_value == 2.5
  assert values[("eval/loss", 10)].simple_value == 2.75
  text = values[("config/text_summary", 0)].tensor.string_val[0].decode()
  assert '"objective": "clm"' in text
  # The HParams tab: each field by its dotted name, beside the losses it tracks.
  start = plugin_hparams_pb2.HParamsPluginData.FromString(
    values[("_hparams_/session_start_info", 0)].metadata.plugin_data.content)
  hparams = start.session_start_info.hparams
  assert hparams["optimizer.lr"].number_value == 0.002
  assert hparams["optimizer.schedule"].string_value == "cosine"
  assert hparams["checkpoint_tokens"].string_value == "[1000, 2000]"
  assert hparams["data.cache_dir"].string_value == "null"
  experiment = plugin_hparams_pb2.HParamsPluginData.FromString(
    values[("_hparams_/experiment", 0)].metadata.plugin_data.content).experiment
  assert [m.name.tag for m in experiment.metric_infos] == ["eval/loss", "eval/accuracy",
                                                           "train/loss"]


def test_wandb_keeps_one_run_per_workdir(tmp_path, monkeypatch):
  calls = []

  class Run:
    def log(self, values, step):
      calls.append(("log", values, step))

    def finish(self):
      calls.append(("finish",))

  def init(**kwargs):
    calls.append(("init", kwargs))
    return Run()

  monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
  monkeypatch.setenv("WANDB_PROJECT", "bert-vs-gpt")
  workdir = epath.Path(tmp_path / "run-a")
  workdir.mkdir()
  for _ in range(2):  # a run, then its resumption
    [wb] = open_trackers(("wandb",), workdir, {"seed": 0})
    wb.scalars("train", 5, {"loss": 1.0})
    wb.close()
  first, second = calls[0][1], calls[3][1]
  assert first["id"] == second["id"] == (workdir / "wandb-id").read_text()
  assert first == {"project": "bert-vs-gpt", "name": "run-a", "id": first["id"],
                   "resume": "allow", "config": {"seed": 0}, "dir": str(workdir)}
  assert calls[1] == ("log", {"train/loss": 1.0}, 5) and calls[2] == ("finish",)


def test_wandb_logs_offline(tmp_path, monkeypatch):
  pytest.importorskip("wandb", reason="the wandb extra is not installed")
  monkeypatch.setenv("WANDB_MODE", "offline")
  monkeypatch.setenv("WANDB_SILENT", "true")
  [wb] = open_trackers(("wandb",), epath.Path(tmp_path), {"seed": 0})
  wb.scalars("train", 1, {"loss": 3.0})
  wb.close()
  run_id = (tmp_path / "wandb-id").read_text()
  assert glob.glob(f"{tmp_path}/wandb/offline-run-*-{run_id}/run-{run_id}.wandb")


def test_an_unknown_tracker_is_one_line():
  check(("tensorboard", "wandb"))
  with pytest.raises(ConfigError, match="config.trackers='mlflow': unknown 'mlflow'; allowed: "
                                        "tensorboard, wandb"):
    check(("mlflow",))
