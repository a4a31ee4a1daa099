"""BLiMP zero-shot: `jaxlm eval --workdir RUN --task blimp`.

Each minimal pair is right when the good sentence scores higher (jaxlm.eval.scoring; ties count
half). The default takes a fixed 100 pairs per paradigm (6,700 pairs: +-1.2 points at 50%).
Beside the model, the report gives a count-based unigram model of the run's own pre-training
text, scored the same way (the floor a model that knows only word frequencies reaches), and the
published 5-gram, LSTM, GPT-2 and human accuracies.
"""

from __future__ import annotations

from jaxlm.eval import blimp_data, scoring, stats
from jaxlm.eval.unigram import UnigramModel


def unigram_floor(loaded, pairs, train_texts) -> blimp_data.BlimpSummary:
  """The pairs scored by an add-one unigram model of `train_texts`, with the run's tokenizer."""
  tok = loaded.tokenizer
  counts = UnigramModel.fit((e.ids for e in tok.encode_batch(train_texts)), tok.get_vocab_size())
  good = counts.score_many(e.ids for e in tok.encode_batch([p.good for p in pairs],
                                                          add_special_tokens=False))
  bad = counts.score_many(e.ids for e in tok.encode_batch([p.bad for p in pairs],
                                                         add_special_tokens=False))
  return blimp_data.summarize(pairs, good, bad)


def evaluate(loaded, paradigms=None, per_paradigm: int | None = 100, train_texts=None) -> dict:
  """BLiMP accuracy (0-100) overall, per phenomenon and per paradigm, with a 95% bootstrap
  interval over pairs; the unigram floor when `train_texts` is given."""
  pairs = blimp_data.load_pairs(paradigms, per_paradigm)
  good = scoring.sentence_scores(loaded, [p.good for p in pairs])
  bad = scoring.sentence_scores(loaded, [p.bad for p in pairs])
  summary = blimp_data.summarize(pairs, good, bad)
  result = {"pairs": summary.n_pairs, "overall": summary.overall,
            "interval": list(stats.bootstrap_ci(summary.correct * 100))[1:],
            "per_phenomenon": dict(summary.per_phenomenon),
            "per_paradigm": dict(summary.per_paradigm), "correct": summary.correct.tolist()}
  if train_texts is not None:
    floor = unigram_floor(loaded, pairs, train_texts)
    result["unigram_floor"] = {"overall": floor.overall,
                               "per_phenomenon": dict(floor.per_phenomenon),
                               "correct": floor.correct.tolist()}
    result["minus_floor"] = list(stats.paired_bootstrap_diff(summary.correct * 100,
                                                             floor.correct * 100))
  return result
