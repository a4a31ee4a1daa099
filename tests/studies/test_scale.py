"""`jaxlm scale`: the size rule, the config's one-line errors, the report's fits on synthetic
grid points with a known law, and a grid point that resumes exactly instead of starting over."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from jaxlm.config import ConfigError, load_config, override
from jaxlm.objectives.build import abstract_model, count_params, non_embedding_params
from jaxlm.studies import scale, scale_report
from jaxlm.studies.config import ScaleConfig


def _config(**changes) -> ScaleConfig:
  """scale/tiny with `changes` given as they are on the command line."""
  return load_config("scale/tiny", {k: str(v) for k, v in changes.items()}, expected=ScaleConfig)


def test_the_size_rule_and_steps():
  config = _config(depths="1,3", tokens="204800,409600")
  assert config.grid() == [(1, 64, 204800), (3, 192, 204800), (1, 64, 409600),
                           (3, 192, 409600)]
  point = scale.point_config(config, "mlm_nsp", 3, 192, 409600)
  m = point.model
  assert (m.num_layers, m.embed_dim, m.num_heads, m.mlp_dim) == (3, 192, 6, 768)
  assert point.steps == 409600 // (16 * 128) == 200
  assert point.optimizer.warmup_steps == 20 and point.eval_every == 200 // 8
  assert point.objective == "mlm_nsp" and m.type_vocab_size == 2


@pytest.mark.parametrize("changes, message", [
  (dict(depths="1,x"), "config.depths='1,x': expected comma-separated integers"),
  (dict(depths="2,2"), "config.depths='2,2': a comma-separated list of distinct positive"),
  (dict(tokens="0"), "config.tokens='0': a comma-separated list"),
  (dict(head_dim=48), "config.head_dim=48: must divide config.width_per_layer=64"),
  (dict(objectives="mlm,bert"), "config.objectives: 'bert' is not a variant; allowed: "),
  (dict(tokens="10000"), "config.tokens: 10000 tokens make fewer than config.curve_points=8"),
  (dict(warmup_frac=1.0), "config.warmup_frac=1.0: must be in [0, 1)"),
])
def test_bad_grids_fail_in_one_line(changes, message):
  with pytest.raises(ConfigError) as err:
    scale.check(_config(**changes))
  assert message in str(err.value) and "\n" not in str(err.value)


def test_non_embedding_params_leave_out_the_tables():
  config = override(scale.point_config(_config(), "mlm_nsp", 2, 128, 500000),
                    {"model.vocab_size": "2048", "model.position": "learned"})
  total = count_params(abstract_model(config)[1])
  tables = (2048 + config.model.max_seq_len + 2) * 128
  assert non_embedding_params(config) == total - tables


def _synthetic_points(E=3.0, A=400.0, alpha=0.15):
  """Learning curves lying exactly on L = E + A C^-alpha; BLiMP and fine-tuning scores that
  rise with size for `a` and stay flat for `b`."""
  rng = np.random.default_rng(0)
  points = []
  for variant, slope in (("a", 4.0), ("b", 0.0)):
    for L in (1, 2, 3, 4):
      fpt = 1e5 * L ** 2
      steps = np.arange(10, 90, 10)
      tokens = steps * 2048.0
      flops = tokens * fpt
      loss = E + A * flops ** -alpha
      correct = (rng.random(500) < 0.5 + slope * L / 100).astype(float)
      seeds = [{"seed": s, "metrics": {"test": {"score": 60 + slope * L + s}}} for s in (0, 1)]
      points.append({
        "variant": variant, "point": f"L{L}", "layers": L, "width": 64 * L, "tokens": 163840,
        "non_embedding_params": 12 * L * (64 * L) ** 2, "run_dir": "x",
        "curve": {"steps": steps.tolist(), "tokens": tokens.tolist(), "flops": flops.tolist(),
                  "loss": loss.tolist(), "flops_per_token": fpt, "params": 10 ** 5 * L,
                  "seconds": 1.0},
        "heldout": {"loss": float(loss[-1]), "accuracy": 0.1},
        "zero_shot": {"blimp": {"overall": 100 * correct.mean(),
                                "interval": [100 * correct.mean() - 4, 100 * correct.mean() + 4],
                                "correct": correct.tolist(), "items": 500}},
        "finetune": {"goemotions_sentiment": {
          "summary": {"test": {"score": {"mean": 60.5 + slope * L, "min": 60 + slope * L,
                                         "max": 61 + slope * L}}}, "seeds": seeds}}})
  return points


def test_the_report_recovers_a_known_law_and_says_what_is_significant(tmp_path):
  config = _config(objectives="clm,mlm", tasks="goemotions_sentiment")
  points = _synthetic_points()
  for p in points:
    p["variant"] = {"a": "clm", "b": "mlm"}[p["variant"]]
    p["heldout"] |= {"bits_per_byte": 2.0 if p["variant"] == "clm" else 3.0,
                     "bits_per_byte_kind": "exact" if p["variant"] == "clm" else "masked-token"}
  summary = scale_report.summarize(config, points)
  fit = summary["objectives"]["clm"]["fit_compute"]
  assert abs(fit["alpha"] - 0.15) < 0.01 and abs(fit["E"] - 3.0) < 0.1
  trend = summary["objectives"]["clm"]["trends"]["goemotions_sentiment"]
  per_decade = 4.0 / np.log10(4)  # score rises 4 per layer; FLOPs grow as L^2
  assert trend["interval"][0] < per_decade < trend["interval"][1]
  flat = summary["objectives"]["mlm"]["trends"]["goemotions_sentiment"]
  assert abs(flat["slope_per_decade"]) < 1e-6
  diffs = {(d["task"], d["point"]): d for d in summary["differences"]}
  assert diffs[("goemotions_sentiment", "L4")]["interval"][0] == pytest.approx(16.0)
  json.dumps(summary)  # scale.json is plain JSON
  text = scale_report.write(summary, tmp_path).read_text()
  assert "clm: held-out loss on the compute frontier falls as C^(−α) with α = 0.150" in text
  assert "goemotions_sentiment at L4: clm − mlm = +16.0" in text
  assert "| 10.750 | 2.000 | 10.0% |" in text  # clm L4: held-out loss, bits per byte, accuracy
  assert "| 3.000* | 10.0% |" in text  # a masked-token figure, marked
  assert (tmp_path / "loss_vs_flops.png").exists()
  assert (tmp_path / "downstream_vs_flops.png").exists()


def test_pretraining_seeds_run_beside_each_point_and_give_an_interval_over_them(tmp_path):
  config = _config(objectives="clm,mlm", tasks="goemotions_sentiment", depths="1,2",
                   pretrain_seeds=3)
  grid = scale.arms(config, tmp_path)
  names = sorted(a.name for a in grid if a.variant == "clm")
  assert names == ["clm/L1-D64-0.5M", "clm/L1-D64-0.5M-seed1", "clm/L1-D64-0.5M-seed2",
                   "clm/L2-D128-0.5M", "clm/L2-D128-0.5M-seed1", "clm/L2-D128-0.5M-seed2"]
  assert sorted({a.config.seed for a in grid}) == [0, 1, 2]
  # Synthetic points at three seeds: clm beats mlm by 2, 3 and 7 points at L4 (mean 4).
  points = []
  for k, shift in enumerate((-2.0, -1.0, 3.0)):
    for p in _synthetic_points():
      p = dict(p, variant={"a": "clm", "b": "mlm"}[p["variant"]], seed=k)
      if p["variant"] == "clm":
        p["curve"] = dict(p["curve"], loss=[x + 0.01 * k for x in p["curve"]["loss"]])
        ft = p["finetune"]["goemotions_sentiment"]
        summ = ft["summary"]["test"]["score"]
        p["finetune"] = {"goemotions_sentiment": dict(ft, summary={"test": {"score": dict(
          summ, mean=summ["mean"] + shift)}})}
      points.append(p)
  summary = scale_report.summarize(config, points)
  over = [d for d in summary["differences"] if d["over"] == "pretraining seeds"
          and d["task"] == "goemotions_sentiment" and d["point"] == "L4"]
  assert len(over) == 1
  assert over[0]["interval"][0] == pytest.approx(16.0 + np.mean([-2.0, -1.0, 3.0]))
  # The fits see each point once, at its mean over seeds (loss shifted by 0, .01, .02 for clm).
  frontier = summary["objectives"]["clm"]["frontier"]
  flops = [f["flops"] for f in frontier]
  assert len(flops) == len(set(flops))
  text = scale_report.write(summary, tmp_path).read_text()
  assert "pre-training seeds 0..2" in text and "| clm | L4 | 2 |" in text


def test_a_grid_point_resumes_and_a_finished_one_is_not_redone(tmp_path, corpus):
  config = _config(objectives="clm", depths="1", tokens="32768", curve_points=4, zero_shot="",
                   tasks="")
  assert config.zero_shot == () and config.tasks == ()
  config = dataclasses.replace(config, pretrain=override(config.pretrain, {
    "checkpoint_every": "8", "data.vocab_size": "512",
    "data.source": f"text:{corpus}/inaugural", "data.cache_dir": str(tmp_path / "cache")}))
  first = scale.run(config, tmp_path / "a", quiet=True)
  run_dir = tmp_path / "a" / "runs" / "clm" / "L1-D64-0.032768M"
  events = (run_dir / "metrics.jsonl").read_text().splitlines()
  # A finished point: rerunning trains nothing more.
  again = scale.run(config, tmp_path / "a", quiet=True)
  new = (run_dir / "metrics.jsonl").read_text().splitlines()[len(events):]
  assert not [e for e in map(json.loads, new) if e["split"] == "train"]
  assert again["points"][0]["curve"]["loss"] == first["points"][0]["curve"]["loss"]
  # An interrupted point (its last checkpoint lost): it resumes from step 8 to the same losses.
  shutil.copytree(tmp_path / "a", tmp_path / "b")
  resumed_dir = tmp_path / "b" / "runs" / "clm" / "L1-D64-0.032768M"
  shutil.rmtree(resumed_dir / "checkpoints" / "16")
  resumed = scale.run(config, tmp_path / "b", quiet=True)
  setups = [json.loads(e) for e in (resumed_dir / "metrics.jsonl").read_text().splitlines()]
  assert [e["step"] for e in setups if e["split"] == "setup"][-1] == 8
  assert resumed["points"][0]["curve"]["loss"] == first["points"][0]["curve"]["loss"]
