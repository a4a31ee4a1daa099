"""BLiMP minimal pairs (shipped in jaxlm/eval/data/blimp/), subsampling, scoring and the
published accuracies of the BLiMP paper (Warstadt et al., TACL 2020; see SOURCES.md there).

A pair is right when the model scores `good` above `bad` (summed log-probability for a causal
LM, pseudo-log-likelihood for a masked LM); an exact tie counts half, so a scorer that cannot
tell the sentences apart gets 50%, the chance level. Aggregates are on the 0-100 scale, like the
paper's tables and the GLUE scores in jaxlm.eval.tasks.metrics; per-pair credit is 0, 0.5 or 1.

  pairs = load_pairs(per_paradigm=100)              # 6,700 pairs, the same on every machine
  good, bad = score(p.good for p in pairs), score(p.bad for p in pairs)
  summary = summarize(pairs, good, bad)             # summary.overall, .per_phenomenon, ...
  published()["gpt2"].overall                       # 83.0...
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import importlib.resources
import io
import json
import math
import types
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

N_PAIRS_PER_PARADIGM = 1000
SYSTEMS = ("ngram", "lstm", "txl", "gpt2", "human")  # as named in published.json


def _resource(name: str, suite: str = "blimp"):
  # Package data next to this module; jaxlm/eval/data/ has no __init__.py, so it is reached
  # from the jaxlm.eval package rather than imported as a package itself.
  return importlib.resources.files("jaxlm.eval") / "data" / suite / name


def read_published(suite: str) -> tuple[dict, ...]:
  """A shipped minimal-pair suite's published.json rows, one per paradigm."""
  table = json.loads(_resource("published.json", suite).read_text(encoding="utf-8"))
  return tuple(table["paradigms"])


def read_pairs(suite: str, paradigms: Iterable[str], to_pair: Callable[[dict], MinimalPair]
               ) -> Mapping[str, tuple[MinimalPair, ...]]:
  """paradigm -> its pairs in file order, from a shipped suite's pairs.jsonl.gz; `to_pair`
  reads one JSON row."""
  by_uid: dict[str, list[MinimalPair]] = {uid: [] for uid in paradigms}
  with gzip.open(io.BytesIO(_resource("pairs.jsonl.gz", suite).read_bytes()), "rt",
                 encoding="utf-8") as f:
    for line in f:
      pair = to_pair(json.loads(line))
      by_uid[pair.uid].append(pair)
  return types.MappingProxyType({uid: tuple(pairs) for uid, pairs in by_uid.items()})


@dataclasses.dataclass(frozen=True)
class MinimalPair:
  uid: str  # the paradigm, e.g. "adjunct_island"
  phenomenon: str  # one of PHENOMENA, e.g. "island_effects"
  pair_id: int  # 0-999 within the paradigm
  good: str  # the acceptable sentence
  bad: str  # the unacceptable one


@dataclasses.dataclass(frozen=True)
class Accuracy:
  """Accuracy on the 0-100 scale: overall, per phenomenon and per paradigm (sorted keys)."""
  overall: float
  per_phenomenon: Mapping[str, float]
  per_paradigm: Mapping[str, float]


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: it holds an array
class BlimpSummary:
  """`summarize`'s result, on the 0-100 scale like Accuracy; means over the pairs evaluated."""
  overall: float
  per_phenomenon: Mapping[str, float]
  per_paradigm: Mapping[str, float]
  pairs: tuple[MinimalPair, ...]
  correct: np.ndarray  # [n_pairs] float64 credit: 1 right, 0.5 tie, 0 wrong (paired bootstraps)

  @property
  def n_pairs(self) -> int:
    return len(self.pairs)

  @property
  def accuracy(self) -> Accuracy:
    return Accuracy(self.overall, self.per_phenomenon, self.per_paradigm)


@functools.cache
def _published_rows() -> tuple[dict, ...]:
  return read_published("blimp")


PARADIGMS: tuple[str, ...] = tuple(sorted(r["uid"] for r in _published_rows()))
PHENOMENA: tuple[str, ...] = tuple(sorted({r["phenomenon"] for r in _published_rows()}))
PHENOMENON: Mapping[str, str] = types.MappingProxyType(
    {r["uid"]: r["phenomenon"] for r in _published_rows()})  # paradigm -> phenomenon


@functools.cache
def _all_pairs() -> Mapping[str, tuple[MinimalPair, ...]]:
  """paradigm -> its 1,000 pairs in pair_id order."""
  return read_pairs("blimp", PARADIGMS, lambda r: MinimalPair(
    uid=r["UID"], phenomenon=r["linguistics_term"], pair_id=int(r["pairID"]),
    good=r["sentence_good"], bad=r["sentence_bad"]))


def _check_paradigms(paradigms: Iterable[str] | str | None) -> tuple[str, ...]:
  if paradigms is None:
    return PARADIGMS
  if isinstance(paradigms, str):  # one name, not its characters
    paradigms = (paradigms,)
  wanted = set(paradigms)
  for name in sorted(wanted, key=str):
    if name not in PHENOMENON:
      raise ValueError(f"unknown BLiMP paradigm {name!r}: the allowed names are "
                       f"jaxlm.eval.blimp_data.PARADIGMS ({len(PARADIGMS)} names, e.g. "
                       f"{PARADIGMS[0]!r})")
  return tuple(uid for uid in PARADIGMS if uid in wanted)


def _rank_key(seed: int, pair: MinimalPair) -> bytes:
  # A hash, not numpy's RNG: the subsample must not change with the numpy version or platform,
  # and a larger subsample contains the smaller one for the same seed.
  return hashlib.blake2b(f"{seed}/{pair.uid}/{pair.pair_id}".encode(), digest_size=8).digest()


@functools.lru_cache(maxsize=4 * len(PARADIGMS))
def _ranked(uid: str, seed: int) -> tuple[MinimalPair, ...]:
  """The paradigm's pairs in subsampling order for `seed`."""
  return tuple(sorted(_all_pairs()[uid], key=functools.partial(_rank_key, seed)))


def load_pairs(paradigms: Iterable[str] | str | None = None, per_paradigm: int | None = 100,
               seed: int = 0) -> list[MinimalPair]:
  """A fixed subsample of `per_paradigm` pairs of each paradigm (None or 0: all 1,000).

  `paradigms`: names from PARADIGMS (default all 67); the result is in PARADIGMS order, then
  pair_id order, whatever the order given. The same `seed` gives the same pairs on every
  machine. Raises ValueError for an unknown paradigm or a per_paradigm outside 0-1000.
  """
  uids = _check_paradigms(paradigms)
  if per_paradigm is None or per_paradigm == 0:
    per_paradigm = N_PAIRS_PER_PARADIGM
  if not 0 < per_paradigm <= N_PAIRS_PER_PARADIGM:
    raise ValueError(f"per_paradigm={per_paradigm}: BLiMP has {N_PAIRS_PER_PARADIGM} pairs per "
                     "paradigm (use None or 0 for all)")
  out: list[MinimalPair] = []
  for uid in uids:
    if per_paradigm == N_PAIRS_PER_PARADIGM:
      out.extend(_all_pairs()[uid])
    else:
      out.extend(sorted(_ranked(uid, seed)[:per_paradigm], key=lambda p: p.pair_id))
  return out


def _group_means(credit: np.ndarray, keys: Sequence[str]) -> dict[str, float]:
  groups: dict[str, list[int]] = {}
  for i, key in enumerate(keys):
    groups.setdefault(key, []).append(i)
  return {key: 100 * float(credit[idx].mean()) for key, idx in sorted(groups.items())}


def summarize(pairs: Sequence[MinimalPair], scores_good, scores_bad) -> BlimpSummary:
  """Per-pair credit and accuracy of scores for `pairs` (each [n_pairs], higher = better).

  A pair is right when scores_good > scores_bad, half right on an exact tie (e.g. a scorer
  that ignores its input, or two sentences that tokenize alike). `overall` is the mean over the
  pairs given; with the same number of pairs per paradigm (load_pairs) it is also the mean over
  paradigms, the way the paper's overall figure is computed. Raises ValueError on a length
  mismatch, no pairs, or a NaN score (a scoring bug, not a tie).
  """
  pairs = tuple(pairs)
  good = np.asarray(scores_good, dtype=np.float64)  # [n_pairs]
  bad = np.asarray(scores_bad, dtype=np.float64)  # [n_pairs]
  if not pairs or good.shape != (len(pairs),) or bad.shape != (len(pairs),):
    raise ValueError(f"summarize: {len(pairs)} pairs but scores of shape {good.shape} and "
                     f"{bad.shape}; need one good and one bad score per pair")
  if np.isnan(good).any() or np.isnan(bad).any():
    raise ValueError("summarize: NaN scores; every pair needs a comparable score")
  correct = (good > bad) + 0.5 * (good == bad)  # [n_pairs] in {0, 0.5, 1}
  return BlimpSummary(
      overall=100 * float(correct.mean()),
      per_phenomenon=types.MappingProxyType(_group_means(correct, [p.phenomenon for p in pairs])),
      per_paradigm=types.MappingProxyType(_group_means(correct, [p.uid for p in pairs])),
      pairs=pairs, correct=correct)


@functools.cache
def published() -> Mapping[str, Accuracy]:
  """The paper's accuracies (0-100) for each of SYSTEMS: 5-gram "ngram", "lstm", "txl"
  (Transformer-XL), "gpt2" and "human". Overall and each phenomenon are means over paradigms,
  which reproduces the published figures (GPT-2 83.0, human 88.6; see SOURCES.md)."""
  rows = _published_rows()
  out = {}
  for system in SYSTEMS:
    per_paradigm = {r["uid"]: 100 * r[system] for r in sorted(rows, key=lambda r: r["uid"])}
    per_phenomenon = {
        ph: math.fsum(per_paradigm[r["uid"]] for r in rows if r["phenomenon"] == ph) /
        sum(r["phenomenon"] == ph for r in rows) for ph in PHENOMENA}
    out[system] = Accuracy(overall=math.fsum(per_paradigm.values()) / len(per_paradigm),
                           per_phenomenon=types.MappingProxyType(per_phenomenon),
                           per_paradigm=types.MappingProxyType(per_paradigm))
  return types.MappingProxyType(out)
