"""BLiMP zero-shot: `jaxlm eval --workdir RUN --task blimp`.

Each minimal pair is right when the good sentence scores higher (jaxlm.eval.scoring; ties count
half). The default takes a fixed 100 pairs per paradigm (6,700 pairs: +-1.2 points at 50%).
Beside the model, the report gives a count-based unigram model of the run's own pre-training
text, scored the same way (the floor a model that knows only word frequencies reaches), and the
published 5-gram, LSTM, GPT-2 and human accuracies.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxlm.eval import blimp_data, scoring, stats
from jaxlm.eval.unigram import UnigramModel


def unigram_floor(loaded, pairs, train_texts=None, train_ids=None) -> blimp_data.BlimpSummary:
  """The pairs scored by an add-one unigram model of the pre-training text, with the run's
  tokenizer: `train_texts`, or all their token ids `train_ids` (one array, e.g. from the packed
  training rows)."""
  tok = loaded.tokenizer
  ids = [train_ids] if train_ids is not None else (e.ids for e in tok.encode_batch(train_texts))
  counts = UnigramModel.fit(ids, tok.get_vocab_size())
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


def evaluate(loaded, paradigms=None, per_paradigm: int | None = 100, train_texts=None,
             train_ids=None) -> dict:
  """BLiMP accuracy (0-100) overall, per phenomenon and per paradigm, with a 95% bootstrap
  interval over pairs; the unigram floor when `train_texts` or `train_ids` is given."""
  pairs = blimp_data.load_pairs(paradigms, per_paradigm)
  good = scoring.sentence_scores(loaded, [p.good for p in pairs])
  bad = scoring.sentence_scores(loaded, [p.bad for p in pairs])
  summary = blimp_data.summarize(pairs, good, bad)
  result = {"pairs": summary.n_pairs, "overall": summary.overall,
            "interval": list(stats.bootstrap_ci(summary.correct * 100))[1:],
            "per_phenomenon": dict(summary.per_phenomenon),
            "per_phenomenon_interval": _group_intervals(pairs, summary.correct),
            "per_paradigm": dict(summary.per_paradigm), "correct": summary.correct.tolist()}
  if train_texts is not None or train_ids is not None:
    floor = unigram_floor(loaded, pairs, train_texts, train_ids)
    result["unigram_floor"] = {"overall": floor.overall,
                               "per_phenomenon": dict(floor.per_phenomenon),
                               "correct": floor.correct.tolist()}
    result["minus_floor"] = list(stats.paired_bootstrap_diff(summary.correct * 100,
                                                             floor.correct * 100))
  return result


@dataclasses.dataclass(frozen=True)
class BlimpTask:
  """BLiMP as a jaxlm.eval.tasks.base.ZeroShotTask."""

  name: str = "blimp"
  kind: str = "zero_shot"

  def evaluate(self, loaded, *, train_texts=None, train_ids=None, paradigms=None,
               per_paradigm=100) -> dict:
    return evaluate(loaded, paradigms, per_paradigm, train_texts, train_ids)


TASK = BlimpTask()
