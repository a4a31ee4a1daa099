"""Zorro (jaxlm.eval.tasks.zorro): the shipped pairs, the registry entry, BLiMP's evaluation
over them on a tiny random CLM (directly and through `jaxlm eval`), the RoBERTa-base row and
the build script's byte-for-byte output."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers.model import model, tiny_config

from jaxlm import cli
from jaxlm.api import Pretrained
from jaxlm.data import tokenizer as tokenization
from jaxlm.data.sources.text import CORPUS_DIR
from jaxlm.errors import ConfigError
from jaxlm.eval import tasks
from jaxlm.eval.blimp_data import MinimalPair
from jaxlm.eval.tasks import zorro
from jaxlm.eval.tasks.blimp import BIGRAM, PAIR_KINDS, UNIGRAM
from jaxlm.interop import hf_export

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "jaxlm" / "eval" / "data" / "zorro"
# A git directory or work tree of github.com/phueb/Zorro at the shipped commit (SOURCES.md).
SOURCE = Path(os.environ.get("JAXLM_ZORRO_SOURCE", "/work/.mirror/phueb+Zorro/repo"))


def test_shipped_pairs():
  pairs = zorro.load_pairs(per_paradigm=0)
  assert len(pairs) == 46_000 and zorro.load_pairs(per_paradigm=None) == pairs
  by_uid = Counter(p.uid for p in pairs)
  assert len(by_uid) == len(zorro.PARADIGMS) == 23 and set(by_uid.values()) == {2000}
  assert list(zorro.PARADIGMS) == sorted(by_uid)
  assert len(zorro.PHENOMENA) == 13 and {"filler-gap", "island-effects"} <= set(zorro.PHENOMENA)
  assert all(p.phenomenon == zorro.PHENOMENON[p.uid] == p.uid.rsplit("-", 1)[0] for p in pairs)
  assert [p.pair_id for p in pairs[:2000]] == list(range(2000))
  assert all(p.good != p.bad for p in pairs) and len(set(pairs)) == len(pairs)
  assert pairs[0] == MinimalPair("agreement_determiner_noun-across_1_adjective",
                                 "agreement_determiner_noun", 0, "look at this purple thing .",
                                 "look at this purple things .")
  assert (SHIPPED / "pairs.jsonl.gz").stat().st_size < 1_000_000
  assert (SHIPPED / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2020 Philip")


def test_subsample_is_fixed_and_options_are_checked():
  pairs = zorro.load_pairs()  # 100 per paradigm, seed 0
  assert len(pairs) == 2300 and set(Counter(p.uid for p in pairs).values()) == {100}
  assert zorro.load_pairs() == pairs and set(pairs) <= set(zorro.load_pairs(per_paradigm=200))
  # Pinned, so a change of the sampling scheme (which would move every result) is noticed.
  assert [p.pair_id for p in pairs[:8]] == [37, 44, 50, 82, 84, 110, 125, 177]
  chosen = zorro.TASK.load_pairs(("irregular-verb", "binding-principle_a"), 3)
  assert [p.uid for p in chosen] == ["binding-principle_a"] * 3 + ["irregular-verb"] * 3
  with pytest.raises(ConfigError, match=r"^zorro: unknown Zorro paradigm 'in_question_with_aux'"):
    zorro.TASK.check(1, ("in_question_with_aux",))  # ambiguous: two phenomena have it
  with pytest.raises(ConfigError, match="Zorro has 2000 pairs per paradigm"):
    zorro.TASK.check(2001)


def test_registered_as_a_zero_shot_task():
  assert tasks.get("zorro", "zero_shot") is zorro.TASK and "zorro" in tasks.TASKS
  assert zorro.TASK.kind == "zero_shot" and zorro.TASK.name == "zorro"
  with pytest.raises(ConfigError, match="unknown finetune task 'zorro'"):
    tasks.get("zorro", "finetune")


def test_roberta_base_row():
  roberta = zorro.roberta_base()
  assert round(roberta.overall, 1) == 82.5 and set(roberta.per_paradigm) == set(zorro.PARADIGMS)
  assert roberta.per_paradigm["irregular-verb"] == pytest.approx(99.9)
  assert roberta.per_phenomenon["binding"] == pytest.approx(93.85)
  assert min(roberta.per_paradigm.values()) > 50  # the shipped order agrees with RoBERTa's


@pytest.fixture(scope="module")
def lm_and_ids():
  text = gzip.decompress((CORPUS_DIR / "inaugural" / "1861-Lincoln.txt.gz").read_bytes())
  tok = tokenization.train_tokenizer("bpe", [text.decode("utf-8")], 320)
  config = tiny_config("clm", vocab_size=384, max_seq_len=64, position="learned")
  lm = Pretrained(model=model(config), tokenizer=tok, config=config)
  return lm, np.asarray(tok.encode(text.decode("utf-8"), add_special_tokens=False).ids, np.int64)


def test_evaluate_and_render(lm_and_ids):
  lm, train_ids = lm_and_ids
  result = zorro.TASK.evaluate(lm, sample=2, train_ids=train_ids)
  assert result["items"] == 46 == len(result["correct"])
  assert set(result["per_paradigm"]) == set(zorro.PARADIGMS)
  assert set(result["groups"]) == set(result["group_intervals"]) == set(zorro.PHENOMENA)
  assert 0 <= result["overall"] <= 100 and len(result["interval"]) == 2
  assert list(result["references"]) == [UNIGRAM, BIGRAM]
  assert all(len(r["correct"]) == 46 for r in result["references"].values())
  assert sum(result["by_length"]["pairs"].values()) == 46
  assert list(result["by_length"]["pairs"]) == list(PAIR_KINDS)
  text = "\n".join(zorro.TASK.render({"clm": result}))
  assert "| filler-gap | irregular | island-effects |" in text and "| clm | 46 |" in text
  assert f"| {BIGRAM} | 46 |" in text
  assert "| RoBERTa-base (Zorro's scores) | 46,000 | 82.5 |" in text
  assert "Zorro's repository" in text and "BLiMP" not in text


def test_jaxlm_eval_zorro(lm_and_ids, tmp_path, capsys):
  lm, _ = lm_and_ids
  hf_export.to_hf(lm.config, lm.params, tmp_path, lm.tokenizer)
  assert cli.main(["eval", "--workdir", str(tmp_path), "--task", "zorro", "--sample", "1"]) == 0
  assert capsys.readouterr().out.startswith("zorro 23 items: ")
  saved = json.loads((tmp_path / "zorro.json").read_text())
  assert saved["items"] == 23 and set(saved["groups"]) == set(zorro.PHENOMENA)


def test_shipped_files_are_rebuilt_byte_for_byte(tmp_path):
  if not SOURCE.exists():
    pytest.skip(f"needs a Zorro checkout or git directory: {SOURCE} (or $JAXLM_ZORRO_SOURCE)")
  script = str(REPO / "tools" / "build_zorro.py")
  subprocess.run([sys.executable, script, str(SOURCE), "--out", str(tmp_path / "git")],
                 check=True, capture_output=True)
  outs = [tmp_path / "git"]
  if not (SOURCE / "sentences").is_dir():  # a git directory: its work tree reads the same
    tree = tmp_path / "tree"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(SOURCE), "archive", "HEAD", "LICENSE",
                              "sentences/babyberta", "reference"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    subprocess.run([sys.executable, script, str(tree), "--out", str(tmp_path / "tree_out")],
                   check=True, capture_output=True)
    outs.append(tmp_path / "tree_out")
  for out in outs:
    for name in ("pairs.jsonl.gz", "published.json", "LICENSE"):
      assert (out / name).read_bytes() == (SHIPPED / name).read_bytes(), (out, name)
