"""A zero-shot task is one file plus one registry line: the worked example of
docs/extending.md (a word-order task), registered here as a user would, runs through
`jaxlm eval` and renders its own section of the comparison report."""

from __future__ import annotations

import dataclasses
import gzip
import json

import numpy as np
import pytest
from helpers.model import model, tiny_config

from jaxlm import cli, scoring, stats
from jaxlm.api import Pretrained
from jaxlm.data import tokenizer as tokenization
from jaxlm.data.sources.text import CORPUS_DIR
from jaxlm.errors import ConfigError
from jaxlm.eval import tasks
from jaxlm.interop import hf_export
from jaxlm.studies import compare_report

# --- the one file: jaxlm/eval/tasks/word_order.py in docs/extending.md --------------------------
PAIRS = {"svo": [("the cat sat on the mat", "cat the on sat mat the"),
                 ("a dog barked at the man", "dog a at barked man the"),
                 ("we read the long book", "read we long the book")],
         "questions": [("who left the room", "left who room the"),
                       ("what did she say", "did what say she")]}


@dataclasses.dataclass(frozen=True)
class WordOrderTask:
  name: str = "word_order"
  kind: str = "zero_shot"

  def check(self, sample: int, groups: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(groups) - set(PAIRS))
    if unknown:
      raise ConfigError(f"word_order: unknown group {unknown[0]!r}; allowed: {', '.join(PAIRS)}")

  def evaluate(self, model, *, sample: int, groups=(), train_ids=None, progress=False) -> dict:
    items = [(g, good, bad) for g in (groups or PAIRS) for good, bad in PAIRS[g][:sample or None]]
    label = "word_order scoring" if progress else None  # a progress bar for `jaxlm eval`
    good = scoring.sentence_scores(model, [i[1] for i in items], label)
    bad = scoring.sentence_scores(model, [i[2] for i in items], label)
    correct = (good > bad) + 0.5 * (good == bad)
    names = np.asarray([i[0] for i in items])
    return {"items": len(items), "overall": 100 * correct.mean(),
            "interval": list(stats.bootstrap_ci(correct * 100))[1:],
            "groups": {g: 100 * correct[names == g].mean() for g in sorted(set(names))},
            "group_intervals": {g: list(stats.bootstrap_ci(correct[names == g] * 100))[1:]
                                for g in sorted(set(names))},
            "correct": correct.tolist(), "references": {}}

  def render(self, results: dict[str, dict]) -> list[str]:
    return ["| system | items | accuracy |", "|---|---|---|"] + [
      f"| {name} | {r['items']} | {r['overall']:.1f} |" for name, r in results.items()]


TASK = WordOrderTask()
# --- and the one line, in jaxlm/eval/tasks/__init__.py: `TASK.name: TASK,` ---------------------


@pytest.fixture
def registered(monkeypatch):
  monkeypatch.setitem(tasks.TASKS, TASK.name, TASK)
  return TASK


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """A tiny random CLM with a trained tokenizer, written as a Hugging Face directory."""
  text = gzip.decompress((CORPUS_DIR / "inaugural" / "1861-Lincoln.txt.gz").read_bytes())
  tok = tokenization.train_tokenizer("bpe", [text.decode("utf-8")], 320)
  config = tiny_config("clm", vocab_size=384, max_seq_len=64, position="learned")
  lm = Pretrained(model=model(config), tokenizer=tok, config=config)
  out = tmp_path_factory.mktemp("hf")
  hf_export.to_hf(config, lm.params, out, tok)
  return out, lm


def test_a_registered_task_runs_through_jaxlm_eval(registered, exported, capsys):
  hf_dir, _ = exported
  assert cli.main(["eval", "--workdir", str(hf_dir), "--task", "word_order", "--sample", "2",
                   "--groups", "svo,questions"]) == 0
  printed = capsys.readouterr().out
  assert printed.startswith("word_order 4 items: ")
  saved = json.loads((hf_dir / "word_order.json").read_text())
  assert saved["items"] == 4 and saved["options"] == {"sample": 2, "groups": ["svo", "questions"],
                                                       "scoring": "auto"}
  assert set(saved["groups"]) == {"svo", "questions"}


def test_its_options_are_checked_before_anything_loads(registered, capsys):
  assert cli.main(["eval", "--workdir", "/no/such/run", "--task", "word_order",
                   "--groups", "passives"]) == 2
  assert capsys.readouterr().err.strip() == (
    "jaxlm: error: word_order: unknown group 'passives'; allowed: svo, questions")


def test_it_renders_its_own_report_section(registered, exported, tmp_path):
  _, lm = exported
  result = TASK.evaluate(lm, sample=0)
  lines = compare_report.zero_shot_section("word_order", {"clm": result, "mlm": result}, tmp_path)
  assert lines[0] == "## word_order (zero-shot)" and "| clm | 5 |" in lines[4]
  assert (tmp_path / "word_order.png").stat().st_size > 0


def test_an_unregistered_task_is_one_line_naming_the_registered_ones(capsys):
  assert cli.main(["eval", "--workdir", "x", "--task", "word_order"]) == 2
  assert "unknown zero_shot task 'word_order'; allowed: blimp, zorro" in capsys.readouterr().err
