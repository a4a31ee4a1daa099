"""Preemption and resume: kill -9, SIGTERM, corrupted checkpoints, remeshing, refused restores,
non-finite steps, and a battery of bad inputs that must never touch existing checkpoints."""

import dataclasses
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import grain
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO
from helpers.cli import logged_losses
from helpers.model import SPECIAL, packed_batch, tiny_config

import jaxlm.train.checkpoint as checkpoint_module
from jaxlm import lease, sharding
from jaxlm.config import ConfigError, MeshConfig, from_dict, load_config
from jaxlm.train.checkpoint import Checkpointer, WallClockCadence
from jaxlm.train.evaluate import with_bits_per_byte
from jaxlm.train.loop import NonFiniteLoss, train
from jaxlm.train.optim import make_optimizer
from jaxlm.train.state import create_train_state
from jaxlm.train.step import jit_steps

TINY = REPO / "configs/tiny.py"


def _overrides(corpus: Path, tmp_path: Path, **extra) -> dict:
  return {"batch_size": "8", "seq_len": "64", "log_every": "1", "eval_every": "0",
          "eval_batches": "1", "data.vocab_size": "512", "optimizer.warmup_steps": "5",
          "data.source": f"text:{corpus}/tinyshakespeare",
          "data.cache_dir": str(tmp_path / "cache"), **extra}


def _cli(workdir: Path, overrides: dict, *extra: str) -> list[str]:
  return [sys.executable, "-m", "jaxlm", "train", "--config", str(TINY), "--workdir",
          str(workdir), "--quiet", *[f"--config.{k}={v}" for k, v in overrides.items()], *extra]


def _losses(workdir: Path) -> dict[int, float]:
  return logged_losses((workdir / "metrics.jsonl").read_text())


def _wait_for_step(workdir: Path, step: int, process: subprocess.Popen) -> None:
  deadline = time.time() + 240
  while time.time() < deadline:
    assert process.poll() is None, process.stderr.read()
    if (workdir / "metrics.jsonl").exists() and max(_losses(workdir) or {0: 0}) >= step:
      return
    time.sleep(0.05)
  raise TimeoutError(f"step {step} never logged")


def _tree_digest(path: Path) -> str:
  """Every file of a run directory but the lease, which records who last held it."""
  digest = hashlib.sha256()
  for f in sorted(p for p in path.rglob("*") if p.is_file() and p.name != lease.FILE):
    digest.update(str(f.relative_to(path)).encode() + f.read_bytes())
  return digest.hexdigest()


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, corpus):
  """An uninterrupted 60-step run: the losses every interrupted run must reproduce."""
  tmp = tmp_path_factory.mktemp("straight")
  overrides = _overrides(corpus, tmp, steps="60", checkpoint_every="10")
  train(load_config(TINY, overrides), tmp / "run", quiet=True)
  return overrides, _losses(tmp / "run"), tmp / "run"


def test_kill_9_then_rerun_logs_the_same_losses(straight_run, tmp_path):
  overrides, expected, _ = straight_run
  workdir = tmp_path / "run"
  process = subprocess.Popen(_cli(workdir, overrides), cwd=REPO, stderr=subprocess.PIPE,
                             text=True)
  _wait_for_step(workdir, 25, process)
  process.send_signal(signal.SIGKILL)
  process.wait()
  assert _losses(workdir) and max(_losses(workdir)) < 60
  rerun = subprocess.run(_cli(workdir, overrides), cwd=REPO, capture_output=True, text=True)
  assert rerun.returncode == 0, rerun.stderr
  assert _losses(workdir) == expected


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 75), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_saves_exits_and_resumes(straight_run, tmp_path, signum, code):
  overrides, expected, _ = straight_run
  workdir = tmp_path / "run"
  process = subprocess.Popen(_cli(workdir, overrides), cwd=REPO, stderr=subprocess.PIPE,
                             text=True)
  _wait_for_step(workdir, 15, process)
  process.send_signal(signum)
  assert process.wait(timeout=120) == code
  assert "Traceback" not in process.stderr.read()
  # The save happened at the step the signal interrupted, and that step was logged.
  saved = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
  assert saved[-1] == max(_losses(workdir)) and saved[-1] % 10 != 0
  rerun = subprocess.run(_cli(workdir, overrides), cwd=REPO, capture_output=True, text=True)
  assert rerun.returncode == 0, rerun.stderr
  assert _losses(workdir) == expected


def test_a_corrupted_newest_checkpoint_is_set_aside(straight_run, tmp_path):
  overrides, expected, finished = straight_run
  workdir = tmp_path / "run"
  shutil.copytree(finished, workdir)  # checkpoints 40, 50, 60
  victims = [p for p in (workdir / "checkpoints/60/state").rglob("*")
             if p.is_file() and p.stat().st_size > 1000]
  assert victims
  for p in victims:  # truncated files, as a full disk or a bad copy leaves them
    p.write_bytes(p.read_bytes()[:100])
  (workdir / "metrics.jsonl").unlink()
  result = subprocess.run(_cli(workdir, overrides), cwd=REPO, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert "checkpoint 60 is unreadable" in result.stderr
  assert [p.name.split("-")[0] for p in (workdir / "checkpoints-unreadable").iterdir()] == ["60"]
  # Resumed from 50 and retrained 51..60 exactly.
  assert _losses(workdir) == {s: loss for s, loss in expected.items() if s > 50}


def test_restore_onto_another_mesh():
  cfg = tiny_config("mlm")
  tx = make_optimizer(cfg.optimizer, cfg.steps)
  meshes = [MeshConfig(8, 1, 1), MeshConfig(2, 1, 4), MeshConfig(1, 2, 4)]
  _, saved_state, _ = create_train_state(cfg, sharding.make_mesh(meshes[0]), tx)
  return_states = []
  import tempfile
  with tempfile.TemporaryDirectory() as d:
    ckpt = Checkpointer(Path(d), keep=1)
    ckpt.save(0, saved_state, _FakeIter(), {"x": 1})
    ckpt.close()
    for mesh_cfg, devices in [(meshes[1], None), (meshes[2], None),
                              (MeshConfig(1, 1, 1), jax.devices()[:1])]:
      mesh = sharding.make_mesh(mesh_cfg, devices)
      other = dataclasses.replace(tiny_config("mlm"), seed=7)  # the restore must overwrite all
      _, fresh, shardings = create_train_state(other, mesh, tx)
      restored = Checkpointer(Path(d), keep=1).restore_latest(fresh, shardings, _FakeIter())
      return_states.append((restored, shardings))
  for restored, shardings in return_states:
    for a, b, s in zip(jax.tree.leaves(saved_state.params), jax.tree.leaves(restored.params),
                       jax.tree.leaves(shardings.params)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
      assert b.sharding == s


def _FakeIter():
  """A real grain iterator, for checkpoint tests that need one but no pipeline."""
  return iter(grain.MapDataset.range(10).to_iter_dataset())


def test_a_nan_step_is_never_applied(monkeypatch):
  import jaxlm.train.step as step_module
  real = step_module.objective_sums

  def poisoned(model, batch, *args, **kwargs):
    sums = real(model, batch, *args, **kwargs)
    marked = batch["tokens"][0, 0] == 255
    return {**sums, "loss_sum": jnp.where(marked, jnp.nan, sums["loss_sum"])}

  monkeypatch.setattr(step_module, "objective_sums", poisoned)
  cfg = tiny_config("clm")
  mesh = sharding.make_mesh(MeshConfig(1, 1, 1), jax.devices()[:1])
  tx = make_optimizer(cfg.optimizer, cfg.steps)
  graphdef, state, state_sh = create_train_state(cfg, mesh, tx)
  step, _ = jit_steps(graphdef, cfg, SPECIAL, tx, state_sh, sharding.batch_sharding(mesh))
  good, bad = packed_batch(), packed_batch()
  bad["tokens"][0, 0] = 255
  with jax.set_mesh(mesh):
    before = jax.tree.map(np.asarray, state)
    state, m = step(state, bad)
    assert int(m["nonfinite_streak"]) == 1 and int(state.step) == 1
    for a, b in zip(jax.tree.leaves(before.params) + jax.tree.leaves(before.opt_state),
                    jax.tree.leaves(state.params) + jax.tree.leaves(state.opt_state)):
      np.testing.assert_array_equal(a, np.asarray(b))
    state, m = step(state, good)
    assert int(m["nonfinite_streak"]) == 0
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.params))
    assert not np.array_equal(jax.tree.leaves(state.params)[0], jax.tree.leaves(before.params)[0])


def test_k_nonfinite_steps_stop_the_run_with_clean_checkpoints(monkeypatch, corpus,
                                                                tmp_path):
  import jaxlm.train.step as step_module
  real = step_module.objective_sums
  monkeypatch.setattr(step_module, "objective_sums", lambda *a, **k: {
    **real(*a, **k), "loss_sum": jnp.float32(jnp.inf)})
  config = load_config(TINY, _overrides(corpus, tmp_path, steps="50",
                                        checkpoint_every="1", max_nonfinite_steps="3"))
  with pytest.raises(NonFiniteLoss, match="3 consecutive steps"):
    train(config, tmp_path / "run", quiet=True)
  steps = sorted(int(p.name) for p in (tmp_path / "run/checkpoints").iterdir())
  assert 3 <= steps[-1] <= 5  # stopped right after the third bad step
  config = from_dict(json.loads((tmp_path / "run/config.json").read_text()))  # as resolved
  _, fresh, shardings = create_train_state(config, sharding.make_mesh(config.mesh),
                                           make_optimizer(config.optimizer, config.steps))
  restored = Checkpointer(tmp_path / "run", keep=3).restore_latest(fresh, shardings, _FakeIter())
  for a, b in zip(jax.tree.leaves(fresh.params), jax.tree.leaves(restored.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # nothing was ever applied


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, corpus):
  tmp = tmp_path_factory.mktemp("finished")
  overrides = _overrides(corpus, tmp, steps="4", checkpoint_every="2")
  train(load_config(TINY, overrides), tmp / "run", quiet=True)
  return overrides, tmp / "run"


BAD_INPUTS = [
  ({"model.layers": "2"}, "config.model.layers: unknown key"),
  ({"steps": "-5"}, "config.steps=-5: must be a positive integer"),
  ({"optimizer.lr": "-1e-3"}, "config.optimizer.lr=-0.001: must be a positive finite number"),
  ({"mesh.data": "3"}, "data*fsdp*tensor=3 but 8 devices"),
  ({"batch_size": "12"}, "must split evenly over data*fsdp=8"),
  ({"data.source": "text:/no/such/path"}, "'/no/such/path' does not exist"),
  ({"data.source": "text:EMPTY_DIR"}, "holds no files"),
  ({"data.tokenizer": "wordpiece"}, "made with data.tokenizer='bpe'"),
  ({"data.vocab_size": "4096"}, "made with data.tokenizer='bpe', data.vocab_size=512"),
  ({"model.num_layers": "3"}, "model.num_layers=2 there but 3 here"),
  ({"objective": "mlm"}, "trained with objective=clm, this run is mlm"),
  ({}, "planned with steps=4, this run asks for 8; the learning-rate schedule would change"),
  ({"steps": "4", "optimizer.lr": "1e-4"}, "planned with optimizer.lr=0.002, this run asks for"),
]


@pytest.mark.parametrize("change, message", BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_fails_in_one_line_and_leaves_checkpoints_alone(finished_run, tmp_path,
                                                                  change, message):
  overrides, workdir = finished_run
  (tmp_path / "empty").mkdir()
  change = {k: v.replace("EMPTY_DIR", str(tmp_path / "empty")) for k, v in change.items()}
  before = _tree_digest(workdir)
  result = subprocess.run(_cli(workdir, {**overrides, "steps": "8", **change}), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 2
  errors = [line for line in result.stderr.splitlines() if line.startswith("jaxlm: error:")]
  assert len(errors) == 1 and message in errors[0], result.stderr
  assert "Traceback" not in result.stderr
  assert _tree_digest(workdir) == before


def test_a_finished_run_extends_when_asked(finished_run, tmp_path, capsys):
  overrides, finished = finished_run
  workdir = tmp_path / "run"
  shutil.copytree(finished, workdir)
  train(load_config(TINY, {**overrides, "steps": "6", "allow_schedule_change": "true"}), workdir,
        quiet=True)
  assert f"resumed from step 4 of 6 in {workdir}" in capsys.readouterr().err
  assert max(int(p.name) for p in (workdir / "checkpoints").iterdir()) == 6
  assert json.loads((workdir / "config.json").read_text())["steps"] == 6


def test_a_missing_config_file_fails_in_one_line(tmp_path):
  result = subprocess.run([sys.executable, "-m", "jaxlm", "train", "--config",
                           str(tmp_path / "nope.py"), "--workdir", str(tmp_path / "w")],
                          cwd=REPO, capture_output=True, text=True)
  assert result.returncode == 2
  assert result.stderr.strip().startswith(f"jaxlm: error: --config {tmp_path / 'nope.py'}: no such config file")


def test_init_from_carries_the_backbone_and_guards_the_objective(finished_run, tmp_path):
  overrides, source = finished_run
  cli = _cli(tmp_path / "mlm", {**overrides, "objective": "mlm", "steps": "1",
                                "optimizer.lr": "1e-12"}, "--init_from", str(source))
  refused = subprocess.run(cli, cwd=REPO, capture_output=True, text=True)
  assert refused.returncode == 2
  assert "add --config.allow_objective_change=true" in refused.stderr
  accepted = subprocess.run(cli + ["--config.allow_objective_change=true"], cwd=REPO,
                            capture_output=True, text=True)
  assert accepted.returncode == 0, accepted.stderr
  from jaxlm import api
  before, after = api.load(source), api.load(tmp_path / "mlm")
  embed = lambda m: np.asarray(m.model.backbone.embed.embedding[...])
  np.testing.assert_allclose(embed(after), embed(before), atol=1e-6)  # lr ~ 0: as loaded
  assert after.config.objective == "mlm" and after.model.mlm_head is not None
  assert (tmp_path / "mlm/tokenizer.json").read_text() == (source / "tokenizer.json").read_text()


def test_mlm_nsp_with_whole_word_masking_resumes_exactly(corpus, tmp_path):
  """Sentence-pair rows, token types, NSP labels and whole-word masks replay exactly: a run
  resumed from its step-6 checkpoint logs the losses (MLM and NSP) of the uninterrupted run."""
  overrides = _overrides(corpus, tmp_path, steps="12", checkpoint_every="6",
                         objective="mlm_nsp", **{"model.type_vocab_size": "2",
                                                 "mlm.masking": "whole_word",
                                                 "data.source": f"text:{corpus}/inaugural"})
  straight = tmp_path / "straight"
  train(load_config(TINY, overrides), straight, quiet=True)
  resumed = tmp_path / "resumed"
  shutil.copytree(straight, resumed)
  shutil.rmtree(resumed / "checkpoints" / "12")
  train(load_config(TINY, overrides), resumed, quiet=True)

  def events(workdir):
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [e for e in lines if e["split"] in ("setup", "train")]

  setups = [e for e in events(resumed) if e["split"] == "setup"]
  assert [s["resumed"] for s in setups] == [False, True] and setups[1]["step"] == 6
  by_step = {e["step"]: e for e in events(straight) if e["split"] == "train"}
  redone = [e for e in events(resumed) if e["split"] == "train"][12:]
  assert [e["step"] for e in redone] == list(range(7, 13))
  for e in redone:
    for key in ("loss", "mlm_loss", "nsp_loss", "nsp_accuracy", "accuracy"):
      assert e[key] == by_step[e["step"]][key], (e["step"], key)


def test_token_milestones_are_kept_and_resumed_across(corpus, tmp_path, straight_run):
  """Checkpoints at token milestones outlive `keep_checkpoints`; a run that lost everything after
  a milestone resumes from it to exactly the uninterrupted losses."""
  overrides, expected, _ = straight_run
  per_step = 8 * 64  # batch_size * seq_len of `_overrides`
  milestones = {**overrides, "checkpoint_tokens": f"{5 * per_step},{12 * per_step - 100}",
                "keep_checkpoints": "1"}
  assert load_config(TINY, milestones).milestone_steps() == [5, 12]
  workdir = tmp_path / "run"
  train(load_config(TINY, milestones), workdir, quiet=True)
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [5, 12, 60]
  shutil.rmtree(workdir / "checkpoints" / "60")
  train(load_config(TINY, milestones), workdir, quiet=True)
  assert _losses(workdir) == expected
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir()) == [5, 12, 60]


def test_rerunning_a_finished_run_says_so_and_logs_nothing_again(straight_run, tmp_path):
  overrides, _, finished = straight_run
  workdir = tmp_path / "run"
  shutil.copytree(finished, workdir)
  before = (workdir / "metrics.jsonl").read_bytes()
  rerun = subprocess.run(_cli(workdir, overrides), cwd=REPO, capture_output=True, text=True,
                         timeout=300)
  assert rerun.returncode == 0, rerun.stderr
  assert f"{workdir} is already complete at step 60" in rerun.stderr
  assert (workdir / "metrics.jsonl").read_bytes() == before


def test_wall_clock_cadence_saves_at_logging_steps_once_the_time_has_passed(monkeypatch):
  now = [100.0]
  monkeypatch.setattr(checkpoint_module.time, "monotonic", lambda: now[0])
  clock = WallClockCadence(minutes=2, every=5)
  now[0] += 119
  assert not clock.due(5)  # 1:59 since the start
  now[0] += 1
  assert not clock.due(7)  # not a logging step
  assert clock.due(10)
  clock.saved()
  now[0] += 60
  assert not clock.due(15)  # a minute after that save
  assert not WallClockCadence(minutes=0, every=1).due(1)  # 0: never by time


def test_a_run_saves_by_wall_time(corpus, tmp_path):
  config = load_config(TINY, _overrides(corpus, tmp_path, steps="6", log_every="2",
                                        checkpoint_minutes="1e-9", keep_checkpoints="5"))
  train(config, tmp_path / "run", quiet=True)
  assert sorted(int(p.name) for p in (tmp_path / "run/checkpoints").iterdir()) == [2, 4, 6]


def test_bits_per_byte_is_logged_where_the_loss_is_a_likelihood():
  metrics = {"loss": 2.0, "accuracy": 0.5}
  assert with_bits_per_byte(metrics, "clm", 4.0)["bits_per_byte"] == pytest.approx(
    2.0 / np.log(2) / 4.0)
  assert with_bits_per_byte(metrics, "mdlm", 4.0)["bits_per_byte_bound"] == pytest.approx(
    2.0 / np.log(2) / 4.0)
  assert with_bits_per_byte(metrics, "mlm", 4.0) == metrics  # a masked-token loss: none


def test_only_a_changed_learning_rate_plan_is_refused():
  """Raising `steps` re-plans a cosine schedule but not a constant one (warmup done); an
  objective schedule switches at a share of `steps`, so there any change counts."""
  def config(steps, schedule="cosine", objective="clm"):
    return {"steps": steps, "objective": objective, "schedule": {"first_frac": 0.5},
            "optimizer": {"lr": 1e-3, "schedule": schedule, "warmup_steps": 5}}

  check = checkpoint_module._check_schedule
  check(config(10, "constant"), config(20, "constant"), "w")
  with pytest.raises(ConfigError, match="w: planned with steps=10, this run asks for 20"):
    check(config(10), config(20), "w")
  with pytest.raises(ConfigError, match="planned with steps=10"):
    check(config(10, "constant", "clm_then_mlm"), config(20, "constant", "clm_then_mlm"), "w")
  check(config(10), {**config(20), "allow_schedule_change": True}, "w")
