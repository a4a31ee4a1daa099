"""Zorro zero-shot: `jaxlm eval --workdir RUN --task zorro`.

Zorro (Huebner et al., CoNLL 2021, the BabyBERTa paper; MIT licence) is a BLiMP-style suite of
23 paradigms x 2,000 minimal pairs in 13 phenomena, built from templates over words chosen from
the frequent ones of child-directed speech (AO-CHILDES), child-directed writing (Newsela) and
Wikipedia, whole words of BabyBERTa's vocabulary: a test for small models trained on little
text. Sentences are lower case apart from names, with a space before the final punctuation
("look at this purple thing ."), and are scored exactly as written. The shipped copy (jaxlm/eval/data/zorro/, see its
SOURCES.md) is the source's current version, not the one tagged for the paper.

Groups are paradigms, named as Zorro's files are, PHENOMENON-PARADIGM (e.g.
"agreement_subject_verb-in_question_with_aux"; "in_question_with_aux" alone is ambiguous);
results group them by phenomenon. Everything else is BLiMP's (jaxlm.eval.tasks.blimp, which this
subclasses): the same scoring (a tie counts half), fixed subsample (100 pairs per paradigm by
default: 2,300 pairs), unigram and bigram references and breakdown by pair kind. The report's
published row is RoBERTa-base, from the per-sentence scores Zorro's repository ships.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from collections.abc import Iterable, Mapping

from jaxlm.eval import blimp_data
from jaxlm.eval.blimp_data import Accuracy, MinimalPair
from jaxlm.eval.tasks.blimp import BlimpTask

N_PAIRS_PER_PARADIGM = 2000
N_PAIRS = 46_000  # 23 paradigms


@functools.cache
def _published_rows() -> tuple[dict, ...]:
  return blimp_data.read_published("zorro")


PARADIGMS: tuple[str, ...] = tuple(sorted(r["uid"] for r in _published_rows()))
PHENOMENA: tuple[str, ...] = tuple(sorted({r["phenomenon"] for r in _published_rows()}))
PHENOMENON: Mapping[str, str] = types.MappingProxyType(
    {r["uid"]: r["phenomenon"] for r in _published_rows()})  # paradigm -> phenomenon


@functools.cache
def _all_pairs() -> Mapping[str, tuple[MinimalPair, ...]]:
  """paradigm -> its 2,000 pairs in pair_id order (the source's order)."""
  return blimp_data.read_pairs("zorro", PARADIGMS, lambda r: MinimalPair(
    uid=r["paradigm"], phenomenon=r["phenomenon"], pair_id=r["pair_id"], good=r["good"],
    bad=r["bad"]))


@functools.lru_cache(maxsize=4 * len(PARADIGMS))
def _ranked(uid: str, seed: int) -> tuple[MinimalPair, ...]:
  # BLiMP's subsampling hash: a fixed sample on every machine, nested in any larger one.
  return tuple(sorted(_all_pairs()[uid], key=functools.partial(blimp_data._rank_key, seed)))


def load_pairs(paradigms: Iterable[str] | str | None = None, per_paradigm: int | None = 100,
               seed: int = 0) -> list[MinimalPair]:
  """A fixed subsample of `per_paradigm` pairs of each paradigm (None or 0: all 2,000), like
  jaxlm.eval.blimp_data.load_pairs: in PARADIGMS order, then pair_id order. Raises ValueError
  for an unknown paradigm or a per_paradigm outside 0-2000."""
  if isinstance(paradigms, str):
    paradigms = (paradigms,)
  wanted = set(PARADIGMS if paradigms is None else paradigms)
  unknown = sorted(wanted - set(PARADIGMS), key=str)
  if unknown:
    raise ValueError(f"unknown Zorro paradigm {unknown[0]!r}: the allowed names are "
                     f"jaxlm.eval.tasks.zorro.PARADIGMS ({len(PARADIGMS)} names, "
                     f"PHENOMENON-PARADIGM, e.g. {PARADIGMS[0]!r})")
  per_paradigm = per_paradigm or N_PAIRS_PER_PARADIGM
  if not 0 < per_paradigm <= N_PAIRS_PER_PARADIGM:
    raise ValueError(f"per_paradigm={per_paradigm}: Zorro has {N_PAIRS_PER_PARADIGM} pairs per "
                     "paradigm (use None or 0 for all)")
  out: list[MinimalPair] = []
  for uid in (u for u in PARADIGMS if u in wanted):
    if per_paradigm == N_PAIRS_PER_PARADIGM:
      out.extend(_all_pairs()[uid])
    else:
      out.extend(sorted(_ranked(uid, seed)[:per_paradigm], key=lambda p: p.pair_id))
  return out


@functools.cache
def roberta_base() -> Accuracy:
  """RoBERTa-base's accuracy (0-100) on all 46,000 pairs, from the cross-entropy per sentence
  that Zorro's repository ships for it (a tie counts half); overall and each phenomenon are
  means over paradigms."""
  per_paradigm = {r["uid"]: 100 * r["roberta_base"] for r in _published_rows()}
  per_phenomenon = {ph: math.fsum(v for uid, v in per_paradigm.items() if PHENOMENON[uid] == ph)
                    / sum(PHENOMENON[uid] == ph for uid in per_paradigm) for ph in PHENOMENA}
  return Accuracy(overall=math.fsum(per_paradigm.values()) / len(per_paradigm),
                  per_phenomenon=types.MappingProxyType(per_phenomenon),
                  per_paradigm=types.MappingProxyType(dict(sorted(per_paradigm.items()))))


@dataclasses.dataclass(frozen=True)
class ZorroTask(BlimpTask):
  """Zorro as a jaxlm.eval.tasks.base.ZeroShotTask: BLiMP's task over Zorro's pairs; groups
  are its 23 paradigms."""

  name: str = "zorro"
  version: int = 1
  PUBLISHED_NOTE = ("The RoBERTa-base row is computed from the sentence scores Zorro's "
                    "repository ships (reference/huggingface_RoBERTa-base_Liu2019: a masked LM "
                    "pre-trained on about 30B words, scored by Zorro's authors), on all 46,000 "
                    "pairs.")

  def load_pairs(self, groups: tuple[str, ...], sample: int) -> list[MinimalPair]:
    return load_pairs(list(groups) or None, sample or None)

  def phenomena(self) -> tuple[str, ...]:
    return PHENOMENA

  def published_rows(self) -> list[tuple[str, int, Accuracy]]:
    return [("RoBERTa-base (Zorro's scores)", N_PAIRS, roberta_base())]


TASK = ZorroTask()
