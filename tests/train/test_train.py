"""End to end: `jaxlm train` learns real text, logs what it promises, resumes exactly."""

import json
import math
import subprocess
import sys

import pytest
from conftest import REPO

from jaxlm.config import load_config
from jaxlm.train.loop import train

TINY = REPO / "configs/tiny.py"
FAST = {"steps": "60", "batch_size": "8", "seq_len": "64", "log_every": "10",
        "eval_every": "0", "data.vocab_size": "1024", "optimizer.warmup_steps": "10",
        "mesh.data": "-1"}


def _events(workdir, split):
  lines = (workdir / "metrics.jsonl").read_text().splitlines()
  return [e for e in map(json.loads, lines) if e["split"] == split]


@pytest.mark.parametrize("objective", ["clm", "mlm", "prefix_lm"])
def test_loss_falls_on_real_text(objective, corpus, tmp_path):
  source = f"text:{corpus}/tinyshakespeare/input.txt"
  config = load_config(TINY, {**FAST, "objective": objective, "data.source": source,
                              "data.heldout_frac": "0"})
  result = train(config, tmp_path, quiet=True)
  losses = [e["loss"] for e in _events(tmp_path, "train")]
  assert len(losses) == 6
  # Well below a uniform guess over the 1024-token vocabulary (6.93 nats), and still falling.
  # Judged on the final evaluation (4 batches): one MLM step predicts only ~77 tokens (15% of
  # 8 x 64), so a single step's loss moves by a few tenths of a nat with the rows it drew.
  assert result["eval"]["loss"] < math.log(1024) - 1.0, (result["eval"], losses)
  assert losses[-1] < losses[0], losses
  assert result["eval"]["loss"] < losses[0]
  # The embedding table is fitted to the tokenizer in the returned config, not in the argument.
  in_use = _events(tmp_path, "setup")[0]["vocab_in_use"]
  assert config.model.vocab_size == 0 and in_use <= 1024
  assert result["config"].model.vocab_size == -(-in_use // 128) * 128


def test_cli_writes_metrics_tensorboard_and_config(tmp_path):
  overrides = [f"--config.{k}={v}" for k, v in FAST.items() if k not in ("steps", "log_every")]
  result = subprocess.run(
    [sys.executable, "-m", "jaxlm", "train", "--config", str(TINY), "--workdir", str(tmp_path),
     "--config.steps=4", "--config.log_every=2", "--config.mesh.fsdp=2", "--config.mesh.tensor=2",
     "--quiet", *overrides], capture_output=True, text=True, timeout=600, cwd=REPO)
  assert result.returncode == 0, result.stderr
  events = _events(tmp_path, "train")
  assert [e["step"] for e in events] == [2, 4]
  for key in ("loss", "accuracy", "perplexity", "predicted_tokens", "lr", "grad_norm",
              "tokens_seen", "tokens_per_s", "tflops_per_s_per_device", "mfu", "step_time"):
    assert key in events[-1], key
  assert events[-1]["tokens_seen"] == 4 * 8 * 64
  setup = _events(tmp_path, "setup")[0]
  assert setup["mesh"] == {"data": 2, "fsdp": 2, "tensor": 2}
  assert json.loads((tmp_path / "config.json").read_text())["mesh"]["fsdp"] == 2
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
  assert (tmp_path / "tokenizer.json").exists()


def test_train_from_a_prepared_tfds_dataset(corpus, tmp_path):
  data_dir = tmp_path / "tfds"
  prepare = subprocess.run(
    [sys.executable, "-m", "jaxlm", "data", "prepare", "--source",
     f"text:{corpus}/inaugural", "--name", "inaugural", "--data_dir", str(data_dir)],
    capture_output=True, text=True, timeout=300, cwd=REPO)
  assert prepare.returncode == 0, prepare.stderr
  common = {**FAST, "steps": "4", "log_every": "2", "data.cache_dir": str(tmp_path / "cache")}
  text_run = train(load_config(TINY, {**common, "data.source": f"text:{corpus}/inaugural"}),
                   tmp_path / "text", quiet=True)
  tfds_run = train(load_config(TINY, {**common, "data.source": "tfds:inaugural",
                                      "data.tfds_data_dir": str(data_dir)}),
                   tmp_path / "tfds", quiet=True)
  # The same documents, split, tokenizer and order: the same run.
  assert tfds_run["train"]["loss"] == text_run["train"]["loss"]
  missing = subprocess.run(
    [sys.executable, "-m", "jaxlm", "train", "--config", str(TINY), "--workdir",
     str(tmp_path / "x"), "--config.data.source=tfds:nope", f"--config.data.tfds_data_dir={data_dir}"],
    capture_output=True, text=True, timeout=300, cwd=REPO)
  assert missing.returncode == 2 and "jaxlm data prepare" in missing.stderr.splitlines()[-1]
