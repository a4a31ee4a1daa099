"""Objective schedules (`clm_then_mlm`): the step decides the phase, each phase computes exactly
its objective's loss with its own attention, and a run resumed inside either phase or across the
switch logs what the uninterrupted run logged."""

from __future__ import annotations

import json
import shutil

import jax
import jax.numpy as jnp
import pytest
from conftest import REPO
from flax import nnx
from helpers.model import SPECIAL, model, packed_batch, tiny_config

from jaxlm import objectives
from jaxlm.config import ConfigError, load_config, override
from jaxlm.objectives import clm_then_mlm
from jaxlm.train.loop import train
from jaxlm.train.optim import make_optimizer
from jaxlm.train.state import TrainState
from jaxlm.train.step import make_train_step

TINY = REPO / "configs/tiny.py"


def test_the_step_decides_the_phase_and_each_phase_is_its_objective():
  config = override(tiny_config("clm_then_mlm"), {"steps": "10", "schedule.first_frac": "0.3"})
  assert clm_then_mlm.switch_step(config) == 3
  assert [int(clm_then_mlm.phase_of(jnp.asarray(s), config)) for s in range(10)] == [0] * 3 + [1] * 7
  lm = model(config)
  batch = {k: jnp.asarray(v) for k, v in packed_batch().items()}
  key = jax.random.key(1)
  k_objective, _ = jax.random.split(key)
  for step, phase in ((0, "clm"), (2, "clm"), (3, "mlm"), (9, "mlm")):
    got = jax.jit(lambda s: objectives.objective_sums(lm, batch, key, config, SPECIAL, False,
                                                      step=s))(jnp.asarray(step))
    want = objectives.get(phase).loss_sums(lm, batch, k_objective, config, SPECIAL, None)
    for name in ("loss_sum", "count"):
      assert float(got[name]) == pytest.approx(float(want[name]), rel=1e-6), (step, name)
  # Outside training (no step): the last phase, the objective the run ends as.
  final = objectives.objective_sums(lm, batch, key, config, SPECIAL, False)
  assert float(final["count"]) == float(want["count"])


def test_the_train_step_logs_its_phase():
  config = override(tiny_config("clm_then_mlm"), {"steps": "4"})
  lm = model(config)
  graphdef, params = nnx.split(lm)
  tx = make_optimizer(config.optimizer, config.steps)
  step_fn = jax.jit(make_train_step(graphdef, config, SPECIAL, tx))
  state = TrainState(step=jnp.asarray(0), params=params, opt_state=tx.init(params),
                     nonfinite_streak=jnp.asarray(0))
  batch = {k: jnp.asarray(v) for k, v in packed_batch().items()}
  phases = []
  for _ in range(4):
    state, metrics = step_fn(state, batch)
    phases.append(int(metrics["phase"]))
  assert phases == [0, 0, 1, 1]


def test_first_frac_outside_0_1_is_one_line():
  with pytest.raises(ConfigError, match=r"config.schedule.first_frac=1.0: must be in \(0, 1\)"):
    override(tiny_config("clm_then_mlm"), {"schedule.first_frac": "1"}).validate()


def test_a_schedule_resumes_exactly_inside_each_phase_and_across_the_switch(corpus, tmp_path):
  overrides = {"batch_size": "8", "seq_len": "64", "log_every": "1", "eval_every": "0",
               "eval_batches": "1", "data.vocab_size": "512", "optimizer.warmup_steps": "2",
               "data.source": f"text:{corpus}/tinyshakespeare",
               "data.cache_dir": str(tmp_path / "cache"), "steps": "12", "checkpoint_every": "4",
               "objective": "clm_then_mlm"}  # the switch at step 6
  straight = tmp_path / "straight"
  train(load_config(TINY, overrides), straight, quiet=True)

  def train_events(workdir):
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {e["step"]: e for e in lines if e["split"] == "train"}

  want = train_events(straight)
  assert [want[s]["phase"] for s in range(1, 13)] == [0] * 6 + [1] * 6
  for resume_from in (4, 8):  # inside CLM (crossing the switch), inside MLM
    resumed = tmp_path / f"resumed{resume_from}"
    shutil.copytree(straight, resumed)
    for step in (8, 12):
      if step > resume_from:
        shutil.rmtree(resumed / "checkpoints" / str(step))
    (resumed / "metrics.jsonl").write_text("")
    train(load_config(TINY, overrides), resumed, quiet=True)
    got = train_events(resumed)
    assert sorted(got) == list(range(resume_from + 1, 13))
    for step, e in got.items():
      assert (e["loss"], e["phase"]) == (want[step]["loss"], want[step]["phase"]), step
