"""Everyday CLI failures are one line on stderr and a non-zero exit, never a traceback: fill-mask
and generate misuse, bad config files, a closed stdout and Ctrl-C. A run's own config.json
re-runs it. Help texts say what the commands do."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

from jaxlm import cli
from jaxlm.config import load_config
from jaxlm.train.loop import train

# The smallest run that loads: 1 step of a 32-position CLM (learned positions).
TINY_RUN = {"steps": "1", "batch_size": "8", "seq_len": "32", "log_every": "1",
            "eval_every": "0", "data.vocab_size": "512", "optimizer.warmup_steps": "0",
            "model.max_seq_len": "32", "model.embed_dim": "32", "model.num_heads": "2",
            "model.mlp_dim": "64"}


@pytest.fixture(scope="module")
def clm_run(tmp_path_factory, corpus):
  tmp = tmp_path_factory.mktemp("clm_run")
  overrides = {**TINY_RUN, "data.source": f"text:{corpus}/inaugural",
               "data.cache_dir": str(tmp / "cache")}
  train(load_config(REPO / "configs/tiny.py", overrides), tmp / "run", quiet=True)
  return tmp / "run"


# (id, arguments (RUN: the CLM run, TMP: the test's tmp_path), how it is run, exit code, what
# the one line on stderr says).
CASES = [
  ("fill_mask_on_clm", ["fill-mask", "--workdir", "RUN", "--text", "The [MASK] of it."], "", 2,
   ["this is a clm model, which cannot fill masks", "mlm, mlm_nsp", "use generate"]),
  ("fill_mask_without_mask", ["fill-mask", "--workdir", "RUN", "--text", "No mask here."], "",
   2, ["--text 'No mask here.' holds no [MASK] token"]),
  ("generate_empty_prompt", ["generate", "--workdir", "RUN", "--prompt", ""], "", 2,
   ["prompt 1 ('') encodes to no tokens", "at least one"]),
  ("generate_past_max_seq_len", ["generate", "--workdir", "RUN", "--prompt", "We the people",
                                 "--max_new_tokens", "40"], "", 2,
   ["+ max_new_tokens (40) =", "exceeds the model's max_seq_len=32", "new tokens fit"]),
  ("eval_pll_on_clm", ["eval", "--workdir", "RUN", "--task", "zorro", "--scoring", "pll",
                       "--sample", "1", "--no_reference"], "", 2,
   ["scoring: method=pll for a clm model, which never trained on masked tokens; use causal"]),
  ("eval_bad_mesh", ["eval", "--workdir", "RUN", "--task", "blimp", "--mesh", "dp"], "", 2,
   ["mesh='dp'; allowed: auto, none, data, fsdp, DATA,FSDP,TENSOR"]),
  ("generate_steps_on_clm", ["generate", "--workdir", "RUN", "--prompt", "We", "--steps", "4"],
   "", 2, ["steps=4 is for generation by unmasking (mdlm)"]),
  ("train_json_unknown_key", ["train", "--config", "TMP/bad.json", "--workdir", "TMP/w"], "", 2,
   ["bad.json: config.model.layers: unknown key; allowed: vocab_size"]),
  ("closed_stdout", ["generate", "--workdir", "RUN", "--prompt", "We", "--max_new_tokens", "2"],
   "closed_stdout", cli.EXIT_BROKEN_PIPE, []),
  ("ctrl_c_outside_training", ["bench", "--config", "TMP/slow.py"], "sigint",
   cli.EXIT_INTERRUPTED, ["jaxlm: interrupted"]),
]


def _run(args: list[str], how: str, tmp_path) -> tuple[int, str]:
  """`jaxlm ARGS` as a process: plainly, writing to a pipe nobody reads, or interrupted with
  SIGINT while it loads its config (slow.py marks that it is loading, then waits)."""
  command = [sys.executable, "-m", "jaxlm", *args]
  stdout, read_end = subprocess.PIPE, None
  if how == "closed_stdout":
    read_end, stdout = os.pipe()
    os.close(read_end)
  # Test runners (pytest-xdist's workers) may ignore SIGINT, and a child inherits that; a
  # terminal's Ctrl-C reaches a process that does not, so the child starts with the default.
  process = subprocess.Popen(command, cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  if how == "closed_stdout":
    os.close(stdout)
  if how == "sigint":
    deadline = time.time() + 120
    while not (tmp_path / "loading").exists():
      assert process.poll() is None and time.time() < deadline, process.stderr.read()
      time.sleep(0.05)
    process.send_signal(signal.SIGINT)
  _, err = process.communicate(timeout=300)
  return process.returncode, err


@pytest.mark.parametrize("args, how, code, says", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_failures_are_one_line_and_a_nonzero_exit(clm_run, tmp_path, args, how, code, says):
  (tmp_path / "bad.json").write_text(json.dumps({"model": {"layers": 2}}))
  (tmp_path / "slow.py").write_text(
    "import pathlib, time\n"
    f"pathlib.Path({str(tmp_path / 'loading')!r}).touch()\n"
    "time.sleep(120)\n")
  args = [a.replace("RUN", str(clm_run)).replace("TMP", str(tmp_path)) for a in args]
  returncode, err = _run(args, how, tmp_path)
  assert returncode == code, err
  assert "Traceback" not in err and "Exception ignored" not in err, err
  lines = [line for line in err.splitlines() if line.strip()]
  if not says:  # a closed stdout: nothing at all
    assert lines == [], err
    return
  assert len(lines) == 1 and lines[0].startswith("jaxlm: "), err
  assert all(part in lines[0] for part in says), lines[0]


def test_a_run_reruns_from_its_own_config_json(clm_run, tmp_path):
  saved = json.loads((clm_run / "config.json").read_text())
  assert json.loads(load_config(clm_run / "config.json").to_json()) == saved
  rerun = tmp_path / "rerun"
  result = subprocess.run([sys.executable, "-m", "jaxlm", "train", "--config",
                           str(clm_run / "config.json"), "--workdir", str(rerun), "--quiet",
                           "--config.seed=1"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads((rerun / "config.json").read_text()) == {**saved, "seed": 1}
  final = [json.loads(line) for line in (rerun / "metrics.jsonl").read_text().splitlines()][-1]
  step = final["step"]
  assert final["split"] == "eval" and "bits_per_byte" in final
  assert result.stdout.splitlines()[-1] == (  # the end-of-run summary
    f"jaxlm train: step {step}; held-out loss {final['loss']:.4f}, perplexity "
    f"{final['perplexity']:.2f}, {final['bits_per_byte']:.3f} bits/byte, accuracy "
    f"{final['accuracy']:.1%}; checkpoint {rerun}/checkpoints/{step}")


def test_help_texts_say_what_the_commands_do(capsys):
  def help_of(*command):
    with pytest.raises(SystemExit):
      cli.main([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())

  assert "later work" not in help_of()
  assert "GLUE" not in help_of("compare")
  finetune = help_of("finetune")
  assert "(default: the recipe's, 3)" in finetune and "(default: 300)" in finetune
  assert "(default: None)" not in finetune
  assert "a run's config.json" in help_of("train")
