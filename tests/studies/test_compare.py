"""`jaxlm compare` end to end: every stage, the report, resuming, and pre-training seeds."""

import json

import numpy as np
import pytest
from conftest import REPO
from helpers.glue import toy_sst2

import jaxlm
from jaxlm.config import ConfigError, load_config
from jaxlm.data import tokenizer
from jaxlm.eval import tasks
from jaxlm.studies import compare
from jaxlm.studies.config import CompareConfig
from jaxlm.studies.curves import ProbeData


def test_compare_runs_end_to_end_and_reports(tmp_path):
  glue_dir = toy_sst2(tmp_path / "glue")
  overrides = {
    "pretrain.steps": "6", "pretrain.batch_size": "8", "pretrain.seq_len": "64",
    "pretrain.checkpoint_tokens": f"{2 * 8 * 64},{3 * 8 * 64}", "curve_sample": "1",
    "pretrain.data.vocab_size": "512", "pretrain.log_every": "2",
    "pretrain.data.source": f"text:{REPO}/jaxlm/corpus/inaugural",
    "pretrain.data.cache_dir": str(tmp_path / "cache"),
    "finetune.seeds": "2", "finetune.epochs": "1", "finetune.max_train_examples": "64",
    "finetune.max_eval_examples": "48",
    "finetune.batch_size": "16", "finetune.eval_batch_size": "16", "zero_shot_sample": "1",
    "tasks": "goemotions_sentiment,sst2", "glue_dir": str(glue_dir),
    "objectives": "mlm,clm,prefix_lm",
  }
  config = load_config(REPO / "configs/compare/tiny.py", overrides,
                       expected=CompareConfig)
  summary = compare.run(config, tmp_path / "cmp", quiet=True)
  out = tmp_path / "cmp"
  for name in ("report.md", "report.json", "loss_vs_tokens.png", "loss_vs_flops.png",
               "blimp.png", "finetune.png", "learning_curve.png"):
    assert (out / name).stat().st_size > 0, name
  # Identical data, tokenizer and steps: the same tokens seen, the same tokenizer file.
  tokens = {v["tokens"] for v in summary["variants"].values()}
  assert tokens == {6 * 8 * 64}
  hashes = {tokenizer.tokenizer_hash(tokenizer.load_file(out / f"pretrain/{o}/tokenizer.json"))
            for o in ("mlm", "clm", "prefix_lm")}
  assert len(hashes) == 1
  assert set(summary["finetune"]) == {"mlm", "clm", "prefix_lm", "none", "none_causal"}
  assert summary["baselines"] == {"mlm": "none", "clm": "none_causal", "prefix_lm": "none"}
  # What the arms are measured against: same-data bag of words, and each run's frozen features
  # beside a random model's, on the same 64 training examples.
  found = summary["references"]["sst2"]
  assert found["train_examples"] == 64 and set(found["probe"]) == {"mlm", "clm", "prefix_lm"}
  assert set(found["bag_of_words"]) == {"words", "pieces"}
  # The learning curve: milestones at steps 2 and 3, and the end.
  curve = summary["learning_curve"]["clm"]
  assert [p["step"] for p in curve] == [2, 3, 6] and curve[-1]["tokens"] == 6 * 8 * 64
  assert curve[-1]["zero_shot"]["blimp"]["items"] == 67
  # The end's held-out quality and zero-shot scores are the run's own (the same pairs).
  assert curve[-1]["heldout"] == summary["variants"]["clm"]["heldout"]
  blimp = summary["zero_shot"]["blimp"]["clm"]
  assert curve[-1]["zero_shot"]["blimp"] == {
    "items": 67, "overall": blimp["overall"], "interval": blimp["interval"],
    "references": {name: ref["overall"] for name, ref in blimp["references"].items()}}
  # The probe at every point, on the first classification task's test split; at the end it is
  # taken from the references' probe of the same run, which the curve's own probe of the final
  # model reproduces (same examples, features and cross-validation).
  assert [(p["probe"]["task"], p["probe"]["split"]) for p in curve] == [
    ("goemotions_sentiment", "test")] * 3
  final = summary["references"]["goemotions_sentiment"]["probe"]["clm"]["pretrained"]["test"]
  assert curve[-1]["probe"]["score"] == final["score"]
  probe_on = ProbeData.first_of(config, compare.check(config))
  again = probe_on.score(jaxlm.load(out / "pretrain" / "clm"), config.pretrain.seed)
  assert again["score"] == pytest.approx(final["score"])
  assert "random-init features (same shape)" in (out / "report.md").read_text()
  assert ("probe", "clm (frozen features)", "clm (random-init features)", "examples") in {
    (r["kind"], r["a"], r["b"], r["over"]) for r in summary["comparisons"]}
  assert set(summary["finetune"]["none"]) == {"goemotions_sentiment", "sst2"}
  assert set(summary["zero_shot"]["blimp"]) == {"mlm", "clm", "prefix_lm"}
  assert summary["zero_shot"]["blimp"]["mlm"]["items"] == 67
  # Every difference carries its intervals; the report shows each one.
  kinds = {(r["kind"], r["a"], r["b"], r["over"]) for r in summary["comparisons"]}
  assert ("finetune", "mlm", "none", "seeds") in kinds
  assert ("finetune", "mlm", "none", "examples") in kinds
  assert ("zero_shot", "clm", "unigram (same text)", "examples") in kinds
  assert ("zero_shot", "mlm", "clm", "examples") in kinds
  for r in summary["comparisons"]:
    low, high = r["interval"][1:]
    assert len(r["interval"]) == 3 and (np.isnan(low) or low <= r["interval"][0] <= high)
  saved = json.loads((out / "report.json").read_text())
  assert saved["comparisons"] == json.loads(json.dumps(summary["comparisons"]))
  flops = {o: v["flops"] for o, v in summary["variants"].items()}
  assert flops["mlm"] < flops["clm"]  # the MLM head runs on the masked positions only
  # Bits per byte for every objective, labelled for what it is.
  kinds_of = {o: v["heldout"]["bits_per_byte_kind"] for o, v in summary["variants"].items()}
  assert kinds_of == {"mlm": "masked-token", "clm": "exact", "prefix_lm": "exact"}
  assert (out / "bits_per_byte.png").stat().st_size > 0
  report = (out / "report.md").read_text()
  for row in ("| mlm |", "| clm |", "| prefix_lm |", "| none |", "| none_causal |", "unigram (same text)", "bigram (same text)",
              "clm − none_causal", "after Holm's correction", "### Measured against",
              "bag of words: words", "## Learning curve (by tokens seen)",
              "GPT-2 (published)", "mlm − none", "## What is and is not significant",
              "## Does it learn?", "above the unigram (same text) reference on blimp", "tokenizer (V=512)",
              ", masked-token) |", "an upper bound (≤) for `mdlm`"):
    assert row in report, row
  # Rerunning resumes: nothing is trained, scored, measured or fine-tuned again.
  def cached():
    return {p: p.stat().st_mtime_ns for pattern in (
      "results.json", "heldout.json", "probe_*.json", "blimp.json", "references/*.json",
      "learning_curve.json") for p in out.rglob(pattern)}
  before = cached()
  assert len([p for p in before if p.name == "heldout.json"]) == 3
  again = compare.run(config, tmp_path / "cmp", quiet=True)
  assert before == cached()
  assert again["variants"]["clm"]["heldout"] == summary["variants"]["clm"]["heldout"]
  # Each run's probe is cached on its own: a run without one (a variant added to a finished
  # study) is probed alone, to the same numbers; the bag of words is not fitted again.
  (out / "pretrain/mlm/probe_sst2.json").unlink()
  compare.run(config, tmp_path / "cmp", quiet=True)
  changed = {p.relative_to(out).as_posix() for p, t in cached().items() if before.get(p) != t}
  assert changed == {"pretrain/mlm/probe_sst2.json"}
  redone = json.loads((out / "pretrain/mlm/probe_sst2.json").read_text())["probe"]
  assert redone == json.loads(json.dumps(summary["references"]["sst2"]["probe"]["mlm"]))
  # ... and reports the pre-training time its runs logged, not this call's.
  seconds = {o: v["seconds"] for o, v in summary["variants"].items()}
  assert all(s > 0 for s in seconds.values())
  assert seconds == {o: v["seconds"] for o, v in again["variants"].items()}


def test_pre_training_seeds_run_as_their_own_arms(tmp_path):
  overrides = {
    "pretrain.steps": "4", "pretrain.batch_size": "8", "pretrain.seq_len": "64",
    "pretrain.data.vocab_size": "512", "pretrain.log_every": "2", "pretrain.checkpoint_tokens": "",
    "pretrain.data.source": f"text:{REPO}/jaxlm/corpus/inaugural",
    "pretrain.data.cache_dir": str(tmp_path / "cache"), "tasks": "", "zero_shot_sample": "1",
    "curve_sample": "0", "pretrain_seeds": "2",
  }
  config = load_config("compare/tiny", overrides, expected=CompareConfig)
  summary = compare.run(config, tmp_path / "cmp", quiet=True)
  assert set(summary["variants"]) == {"mlm", "clm", "mlm-seed1", "clm-seed1"}
  seeds = {json.loads((tmp_path / "cmp" / "pretrain" / arm / "config.json").read_text())["seed"]
           for arm in ("clm", "clm-seed1")}
  assert seeds == {0, 1}
  across = [r for r in summary["comparisons"] if r["over"] == "pretraining seeds"]
  assert [(r["kind"], r["a"], r["b"]) for r in across] == [("zero_shot", "mlm", "clm")]
  assert "over pre-training seeds" in (tmp_path / "cmp" / "report.md").read_text()


def test_the_in_domain_control_pre_trains_on_the_task_s_training_texts(tmp_path):
  overrides = {
    "pretrain.steps": "2", "pretrain.batch_size": "8", "pretrain.seq_len": "64",
    "pretrain.data.vocab_size": "512", "pretrain.log_every": "1", "pretrain.checkpoint_tokens": "",
    "pretrain.data.cache_dir": str(tmp_path / "cache"), "tasks": "", "zero_shot": "",
    "objectives": "clm", "in_domain": "goemotions_sentiment",
  }
  config = load_config("compare/tiny", overrides, expected=CompareConfig)
  summary = compare.run(config, tmp_path / "cmp", quiet=True)
  folder = tmp_path / "cmp" / "in_domain"
  texts = sorted(folder.glob("*.txt"))
  train = tasks.get("goemotions_sentiment").read("train", None)
  assert len(texts) == len(train) and texts[0].read_text() == train.texts_a[0]
  assert summary["pretrain_config"]["data"]["source"] == f"text:{folder}"
  assert "In-domain control" in (tmp_path / "cmp" / "report.md").read_text()
  with pytest.raises(ConfigError, match="unknown finetune task 'nope'"):
    compare.check(load_config("compare/tiny", {"in_domain": "nope"}, expected=CompareConfig))
