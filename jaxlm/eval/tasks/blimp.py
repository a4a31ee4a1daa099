"""BLiMP zero-shot: `jaxlm eval --workdir RUN --task blimp`.

Each minimal pair is right when the good sentence scores higher (jaxlm.eval.scoring; ties count
half). The default takes a fixed 100 pairs per paradigm (6,700 pairs: +-1.2 points at 50%).
Beside the model, the result gives a count-based unigram model of the run's own pre-training
tokens, scored the same way (what a model that knows only word frequencies reaches), and the
report the published 5-gram, LSTM, GPT-2 and human accuracies.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxlm import stats
from jaxlm.errors import ConfigError
from jaxlm.eval import blimp_data, scoring
from jaxlm.eval.unigram import UnigramModel

PUBLISHED = (("ngram", "5-gram (published)"), ("lstm", "LSTM (published)"),
             ("gpt2", "GPT-2 (published)"), ("human", "human (published)"))
UNIGRAM = "unigram (same text)"


def unigram_reference(model, pairs, train_ids: np.ndarray) -> blimp_data.BlimpSummary:
  """The pairs scored by an add-one unigram model of the pre-training token ids `train_ids`,
  with the run's tokenizer."""
  tok = model.tokenizer
  counts = UnigramModel.fit([train_ids], tok.get_vocab_size())
  good = counts.score_many(e.ids for e in tok.encode_batch([p.good for p in pairs],
                                                          add_special_tokens=False))
  bad = counts.score_many(e.ids for e in tok.encode_batch([p.bad for p in pairs],
                                                         add_special_tokens=False))
  return blimp_data.summarize(pairs, good, bad)


def _group_intervals(pairs, correct) -> dict[str, list[float]]:
  """95% bootstrap interval of each phenomenon's accuracy, over its pairs."""
  groups = np.asarray([p.phenomenon for p in pairs])
  return {ph: list(stats.bootstrap_ci(correct[groups == ph] * 100))[1:]
          for ph in sorted(set(groups))}


def _ci(overall: float, interval) -> str:
  return stats.Interval(overall, *interval).format(signed=False)


@dataclasses.dataclass(frozen=True)
class BlimpTask:
  """BLiMP as a jaxlm.eval.tasks.base.ZeroShotTask: groups are its 67 paradigms."""

  name: str = "blimp"
  kind: str = "zero_shot"

  def check(self, sample: int, groups: tuple[str, ...] = ()) -> None:
    try:
      blimp_data.load_pairs(list(groups) or None, sample or None)
    except ValueError as e:
      raise ConfigError(f"blimp: {e}") from None

  def evaluate(self, model, *, sample: int = 100, groups: tuple[str, ...] = (),
               train_ids: np.ndarray | None = None) -> dict:
    """Accuracy (0-100) overall, per phenomenon and per paradigm, with a 95% bootstrap
    interval over pairs; the unigram reference when `train_ids` is given."""
    pairs = blimp_data.load_pairs(list(groups) or None, sample or None)
    good = scoring.sentence_scores(model, [p.good for p in pairs])
    bad = scoring.sentence_scores(model, [p.bad for p in pairs])
    summary = blimp_data.summarize(pairs, good, bad)
    result = {"items": summary.n_pairs, "overall": summary.overall,
              "interval": list(stats.bootstrap_ci(summary.correct * 100))[1:],
              "groups": dict(summary.per_phenomenon),
              "group_intervals": _group_intervals(pairs, summary.correct),
              "per_paradigm": dict(summary.per_paradigm), "correct": summary.correct.tolist(),
              "references": {}}
    if train_ids is not None:
      ref = unigram_reference(model, pairs, train_ids)
      result["references"][UNIGRAM] = {"overall": ref.overall, "groups": dict(ref.per_phenomenon),
                                       "correct": ref.correct.tolist()}
    return result

  def render(self, results: dict[str, dict]) -> list[str]:
    phenomena = blimp_data.PHENOMENA
    rows = ["| system | pairs | overall | " + " | ".join(p.replace("_", " ") for p in phenomena)
            + " |", "|---" * (len(phenomena) + 3) + "|"]
    references = {}
    for name, r in results.items():
      cells = [f"{r['groups'][p]:.1f}" if p in r["groups"] else "–" for p in phenomena]
      rows.append(f"| {name} | {r['items']:,} | {_ci(r['overall'], r['interval'])} | "
                  + " | ".join(cells) + " |")
      references = references or r.get("references", {})
    for name, ref in references.items():
      cells = [f"{ref['groups'].get(p, math.nan):.1f}" for p in phenomena]
      rows.append(f"| {name} | {len(ref['correct']):,} | {ref['overall']:.1f} | "
                  + " | ".join(cells) + " |")
    published = blimp_data.published()
    for key, label in PUBLISHED:
      acc = published[key]
      rows.append(f"| {label} | 67,000 | {acc.overall:.1f} | " + " | ".join(
        f"{acc.per_phenomenon[p]:.1f}" for p in phenomena) + " |")
    return rows + [
      "", "Accuracy over minimal pairs (a tie counts half), 95% bootstrap interval over pairs. "
      "CLM: summed log-probability; prefix-LM: the same with a one-token prefix; MLM: "
      "word-level pseudo-log-likelihood. The unigram row is a count-based unigram model of the "
      "same pre-training text. Published rows are the BLiMP paper's models on all 67,000 "
      "pairs, trained on far more text."]


TASK = BlimpTask()
