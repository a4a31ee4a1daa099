"""BLiMP zero-shot: `jaxlm eval --workdir RUN --task blimp`.

Each minimal pair is right when the good sentence scores higher (jaxlm.scoring; ties count
half). The default takes a fixed 100 pairs per paradigm (6,700 pairs: +-1.2 points at 50%).
Beside the model, the result gives two count-based references fitted on the run's own
pre-training tokens and scored the same way: a unigram (what token frequencies alone reach) and
an interpolated bigram (adjacent-token statistics; jaxlm.eval.ngram). They are references, not
floors: length decides many pairs. So the result also breaks the pairs down by kind, by the
run's tokenizer (`pair_kind`: good shorter / longer / same length / same tokens in another
order), with the model's and each reference's accuracy on each kind. The report adds the
published 5-gram, LSTM, GPT-2 and human accuracies.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from jaxlm import scoring, stats
from jaxlm.errors import ConfigError
from jaxlm.eval import blimp_data
from jaxlm.eval.ngram import BIGRAM_WEIGHT, BigramModel

PUBLISHED = (("ngram", "5-gram (published)"), ("lstm", "LSTM (published)"),
             ("gpt2", "GPT-2 (published)"), ("human", "human (published)"))
UNIGRAM = "unigram (same text)"
BIGRAM = "bigram (same text)"
# The kinds of pair by token counts under the run's tokenizer (`pair_kind`), in report order,
# with their labels.
PAIR_KINDS = {"good_shorter": "good shorter", "good_longer": "good longer",
              "same_length": "same length", "same_tokens": "same tokens, another order"}


def pair_kind(good_ids: Sequence[int], bad_ids: Sequence[int]) -> str:
  """Which of PAIR_KINDS a pair is, from its two sentences' token ids: "same_tokens" when both
  hold the same multiset of ids (in another order; identical sequences too), else by length:
  the good sentence has fewer ("good_shorter"), more ("good_longer") or as many tokens
  ("same_length")."""
  if sorted(good_ids) == sorted(bad_ids):
    return "same_tokens"
  if len(good_ids) != len(bad_ids):
    return "good_shorter" if len(good_ids) < len(bad_ids) else "good_longer"
  return "same_length"


def _token_ids(tok, sentences: list[str]) -> list[list[int]]:
  return [e.ids for e in tok.encode_batch(sentences, add_special_tokens=False)]


def ngram_references(pairs, good_ids, bad_ids, train_ids: np.ndarray,
                     vocab_size: int) -> dict[str, blimp_data.BlimpSummary]:
  """The pairs (as token ids of the run's tokenizer) scored by an add-one unigram and by an
  interpolated bigram (weight BIGRAM_WEIGHT) of the pre-training token ids `train_ids`, as one
  stream."""
  bigram = BigramModel.fit(train_ids, vocab_size)
  return {name: blimp_data.summarize(pairs, lm.score_many(good_ids), lm.score_many(bad_ids))
          for name, lm in ((UNIGRAM, bigram.unigram), (BIGRAM, bigram))}


def _group_intervals(pairs, correct) -> dict[str, list[float]]:
  """95% bootstrap interval of each phenomenon's accuracy, over its pairs."""
  groups = np.asarray([p.phenomenon for p in pairs])
  return {ph: list(stats.bootstrap_ci(correct[groups == ph] * 100))[1:]
          for ph in sorted(set(groups))}


def _by_kind(kinds: np.ndarray, correct: np.ndarray) -> dict[str, dict]:
  """{kind: {"accuracy", "interval"}} (0-100, 95% bootstrap over the kind's pairs), for the
  kinds that have pairs."""
  out = {}
  for kind in PAIR_KINDS:
    credit = correct[kinds == kind]
    if credit.size:
      ci = stats.bootstrap_ci(credit * 100)
      out[kind] = {"accuracy": ci.estimate, "interval": [ci.low, ci.high]}
  return out


def _ci(overall: float, interval) -> str:
  return stats.Interval(overall, *interval).format(signed=False)


@dataclasses.dataclass(frozen=True)
class BlimpTask:
  """BLiMP as a jaxlm.eval.tasks.base.ZeroShotTask: groups are its 67 paradigms.

  Another suite of minimal pairs is a subclass that overrides the data: `load_pairs`,
  `phenomena`, `published_rows` and PUBLISHED_NOTE (jaxlm/eval/tasks/zorro.py)."""

  name: str = "blimp"
  kind: str = "zero_shot"
  version: int = 2  # 2: exact n-gram sums, the bigram reference, pairs by length
  PUBLISHED_NOTE: ClassVar[str] = ("Published rows are the BLiMP paper's models on all 67,000 "
                                   "pairs, trained on far more text.")

  def load_pairs(self, groups: tuple[str, ...], sample: int) -> list[blimp_data.MinimalPair]:
    """The fixed subsample of `sample` pairs (0: all) of each paradigm in `groups` (empty:
    all); ValueError for an unknown paradigm or a sample too large."""
    return blimp_data.load_pairs(list(groups) or None, sample or None)

  def phenomena(self) -> tuple[str, ...]:
    """The report's columns: every phenomenon, in order."""
    return blimp_data.PHENOMENA

  def published_rows(self) -> list[tuple[str, int, blimp_data.Accuracy]]:
    """(label, pairs scored, accuracy) of each published system the report lists."""
    published = blimp_data.published()
    return [(label, 67_000, published[key]) for key, label in PUBLISHED]

  def check(self, sample: int, groups: tuple[str, ...] = ()) -> None:
    try:
      self.load_pairs(groups, sample)
    except ValueError as e:
      raise ConfigError(f"{self.name}: {e}") from None

  def evaluate(self, model, *, sample: int = 100, groups: tuple[str, ...] = (),
               train_ids: np.ndarray | None = None, progress: bool = False) -> dict:
    """Accuracy (0-100) overall, per phenomenon and per paradigm, with a 95% bootstrap
    interval over pairs; the unigram and bigram references when `train_ids` is given; and
    "by_length": the pairs' kinds (PAIR_KINDS, by the model's tokenizer: "pairs" counts
    them, "kinds" names each pair's) with the accuracy of the "model" and of each of the
    "references" on each kind."""
    pairs = self.load_pairs(groups, sample)
    # Both sides in one call: one progress bar, and rows of a length batched together.
    scores = scoring.sentence_scores(model, [p.good for p in pairs] + [p.bad for p in pairs],
                                     f"{self.name} scoring" if progress else None)
    good, bad = scores[:len(pairs)], scores[len(pairs):]
    summary = blimp_data.summarize(pairs, good, bad)
    tok = model.tokenizer
    good_ids = _token_ids(tok, [p.good for p in pairs])
    bad_ids = _token_ids(tok, [p.bad for p in pairs])
    kinds = np.asarray([pair_kind(g, b) for g, b in zip(good_ids, bad_ids)])
    references = ({} if train_ids is None else
                  ngram_references(pairs, good_ids, bad_ids, train_ids, tok.get_vocab_size()))
    return {"items": summary.n_pairs, "overall": summary.overall,
            "interval": list(stats.bootstrap_ci(summary.correct * 100))[1:],
            "groups": dict(summary.per_phenomenon),
            "group_intervals": _group_intervals(pairs, summary.correct),
            "per_paradigm": dict(summary.per_paradigm), "correct": summary.correct.tolist(),
            "references": {name: {"overall": ref.overall, "groups": dict(ref.per_phenomenon),
                                  "correct": ref.correct.tolist()}
                           for name, ref in references.items()},
            "by_length": {"pairs": {k: int((kinds == k).sum()) for k in PAIR_KINDS},
                          "kinds": kinds.tolist(),
                          "model": _by_kind(kinds, summary.correct),
                          "references": {name: _by_kind(kinds, ref.correct)
                                         for name, ref in references.items()}}}

  def subset(self, result: dict, sample: int, subsample: int,
             groups: tuple[str, ...] = ()) -> dict | None:
    """What `evaluate(sample=subsample)` gives for "items", "overall", "interval" and each
    reference's "overall", taken from `result`, an evaluation of the same model at `sample`:
    the fixed subsamples are nested (each paradigm's first pairs of one ranking) and each
    sentence is scored on its own. None when `result` does not hold every pair."""
    index = {(p.uid, p.pair_id): i for i, p in enumerate(self.load_pairs(groups, sample))}
    try:
      kept = [index[p.uid, p.pair_id] for p in self.load_pairs(groups, subsample)]
    except KeyError:
      return None
    correct = np.asarray(result["correct"], float)[kept]
    return {"items": len(kept), "overall": 100 * float(correct.mean()),
            "interval": list(stats.bootstrap_ci(correct * 100))[1:],
            "references": {name: 100 * float(np.asarray(ref["correct"], float)[kept].mean())
                           for name, ref in result.get("references", {}).items()}}

  def render(self, results: dict[str, dict]) -> list[str]:
    phenomena = self.phenomena()
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
    for label, n_pairs, acc in self.published_rows():
      rows.append(f"| {label} | {n_pairs:,} | {acc.overall:.1f} | " + " | ".join(
        f"{acc.per_phenomenon[p]:.1f}" for p in phenomena) + " |")
    rows += ["", "Accuracy over minimal pairs (a tie counts half), 95% bootstrap interval over "
             "pairs. CLM: summed log-probability; prefix-LM: the same with a one-token prefix; "
             "MLM: word-level pseudo-log-likelihood. " + self.PUBLISHED_NOTE]
    by_length = _render_by_length(results)
    if by_length:
      rows += ["", *by_length]
    return rows + [
      "", "The unigram and bigram rows are references, not floors: count-based models of "
      "exactly the tokens the run pre-trained on (an add-one unigram, and a bigram "
      f"interpolated with it at weight {BIGRAM_WEIGHT}), scored with the run's tokenizer. "
      "Sentence length decides many pairs: a summed log-probability tends to fall with every "
      "extra token, so a scorer that prefers shorter sentences gets most 'good shorter' pairs "
      "right and most 'good longer' pairs wrong without knowing any grammar, and its overall "
      "accuracy depends on how many pairs of each kind the sample holds. On 'same tokens, "
      "another order' pairs the unigram ties exactly (half credit each); only sensitivity to "
      "order moves a score away from 50 there."]


def _render_by_length(results: dict[str, dict]) -> list[str]:
  """Accuracy by pair kind for every system that has it, then the references."""
  have = {name: r["by_length"] for name, r in results.items() if "by_length" in r}
  if not have:
    return []
  counts = next(iter(have.values()))["pairs"]
  rows = ["Accuracy by pair kind (token counts under the run's tokenizer; 95% bootstrap "
          "interval over the kind's pairs):", "",
          "| system | " + " | ".join(PAIR_KINDS.values()) + " |",
          "|---" * (len(PAIR_KINDS) + 1) + "|",
          "| pairs | " + " | ".join(f"{counts.get(k, 0):,}" for k in PAIR_KINDS) + " |"]

  def row(name: str, per_kind: dict, pairs: dict) -> str:
    cells = []
    for kind in PAIR_KINDS:
      cell = (_ci(per_kind[kind]["accuracy"], per_kind[kind]["interval"]) if kind in per_kind
              else "–")
      if pairs.get(kind, 0) != counts.get(kind, 0):  # another tokenizer splits them otherwise
        cell += f" (n={pairs.get(kind, 0):,})"
      cells.append(cell)
    return f"| {name} | " + " | ".join(cells) + " |"

  for name, b in have.items():
    rows.append(row(name, b["model"], b["pairs"]))
  first = next((b for b in have.values() if b["references"]), None)
  for name, per_kind in (first["references"] if first else {}).items():
    rows.append(row(name, per_kind, first["pairs"]))
  return rows


TASK = BlimpTask()
