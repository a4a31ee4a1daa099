"""jaxlm models in EleutherAI's lm-evaluation-harness: importing this module registers the model
type `jaxlm` (it needs the `lmeval` extra; nothing else in jaxlm imports it).

  import jaxlm.eval.lm_eval_model  # noqa: F401 - registers "jaxlm"
  lm_eval.simple_evaluate(model="jaxlm", model_args="path=runs/x", tasks=["lambada_openai"])

or `jaxlm lm-eval --model_args path=runs/x --tasks lambada_openai`. Requests are scored as the
BLiMP scorer scores sentences (`jaxlm.eval.continuations`): models that generate by their
next-token log-likelihood after the token documents open with, masked LMs by word-level
pseudo-log-likelihood of the continuation (not a probability). Generation (greedy, KV cache) is
for models that generate; masked LMs refuse it in one line.
"""

from __future__ import annotations

import json
from collections import defaultdict

from flax import nnx
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import normalize_gen_kwargs, postprocess_generated_text

from jaxlm import api, objectives, scoring
from jaxlm.data.special_tokens import SEP
from jaxlm.errors import ConfigError, DataError
from jaxlm.eval.continuations import ContinuationScorer, Item
from jaxlm.generate import generate, make_step

DEFAULT_MAX_GEN_TOKS = 256  # the harness's default, as its Hugging Face backend has it


@register_model("jaxlm")
class JaxlmLM(LM):
  """A jaxlm run or Hugging Face directory (`path`, anything `jaxlm.load` takes, or a loaded
  `jaxlm.api.Pretrained`). `batch_size`: rows per device call when scoring and prompts per
  generation batch; 'auto' is the BLiMP scorer's rows per call (capped by `max_batch_size`).
  `dtype` overrides the compute dtype (e.g. float32 for a bf16 run). `mesh`: the devices it
  runs on (`api.scoring_mesh`): "auto" (default) shards the scored rows over all of this
  process's devices when there are several (parameters replicated; "fsdp" shards them too),
  "none" keeps one device. JAX picks the platform (JAX_PLATFORMS=cpu for the CPU); the
  harness's `device` is ignored."""

  def __init__(self, path, batch_size: int | str = 1, max_batch_size: int | None = None,
               device: str | None = None, dtype: str | None = None, mesh: str = "auto"):
    super().__init__()  # `device` (the harness's CLI passes cuda:0 unasked) is JAX's to pick
    given = isinstance(path, api.Pretrained)
    layout = api.scoring_mesh(mesh)  # a bad name fails before anything loads
    self.loaded = api.on_mesh(path if given else api.load(path, dtype=dtype), layout)
    where = "the given model" if given else path
    if self.loaded.tokenizer is None:
      raise DataError(f"lm-eval: {where}: holds no tokenizer")
    self.objective = objectives.get(self.loaded.config.objective)
    start = scoring.context_token(self.loaded)
    if self.loaded.tokenizer.token_to_id(start) is None:
      raise DataError(f"lm-eval: {where}: the tokenizer has no {start} token, which jaxlm scores "
                      "text after")
    self.batch_size = _rows(batch_size, max_batch_size)
    self.scorer = ContinuationScorer(self.loaded, self.batch_size)
    self._step = None

  @property
  def max_length(self) -> int:
    return self.loaded.config.model.max_seq_len

  def loglikelihood(self, requests) -> list[tuple[float, bool]]:
    """(log p(continuation | context), is greedy) per request: summed next-token log-probs for
    models that generate, the continuation's PLL (context unmasked) for masked LMs."""
    pairs = [req.args for req in requests]
    sums, greedy = self.scorer.scores(self._items(pairs))
    results = [(float(s), bool(g)) for s, g in zip(sums, greedy)]
    for pair, result in zip(pairs, results):
      self.cache_hook.add_partial("loglikelihood", pair, result)
    return results

  def loglikelihood_rolling(self, requests) -> list[float]:
    """The whole text's score (no context but the document-opening token), in windows of
    max_seq_len where it is longer."""
    texts = [req.args[0] for req in requests]
    sums, _ = self.scorer.scores([Item(ids, words, 0) for ids, words in
                                  scoring.encode(self.loaded, texts)])
    for text, total in zip(texts, sums):
      self.cache_hook.add_partial("loglikelihood_rolling", (text,), float(total))
    return [float(s) for s in sums]

  def _items(self, pairs: list[tuple[str, str]]) -> list[Item]:
    """The harness's split: trailing whitespace of the context moves to the continuation, the
    two are encoded together and the context's own tokens mark where the continuation starts."""
    contexts = [context.rstrip() for context, _ in pairs]
    wholes = [context + continuation for context, continuation in pairs]
    context_ids = scoring.encode(self.loaded, contexts)
    return [Item(ids, words, len(context_ids[n][0]) if contexts[n] else 0)
            for n, (ids, words) in enumerate(scoring.encode(self.loaded, wholes))]

  def generate_until(self, requests) -> list[str]:
    """Greedy continuations (KV cache) after the document-opening token and the context, cut at
    the first of `until`; at most `max_gen_toks` tokens, fewer where the model's max_seq_len
    leaves less room (the context is truncated from the left to leave some)."""
    if not self.objective.generates:
      generators = ", ".join(n for n, o in objectives.OBJECTIVES.items() if o.generates)
      raise DataError(f"lm-eval generate_until: a model pre-trained with {self.objective.name} "
                      "cannot generate text (masked LMs are scored by pseudo-log-likelihood); "
                      f"generation tasks need one of {generators}")
    by_kwargs: dict[str, list[int]] = defaultdict(list)
    for n, req in enumerate(requests):
      by_kwargs[json.dumps(req.args[1], sort_keys=True, default=str)].append(n)
    texts: list[str] = [""] * len(requests)
    for members in by_kwargs.values():
      gen_kwargs = requests[members[0]].args[1]
      contexts = [requests[n].args[0] for n in members]
      for n, text in zip(members, self._generate(contexts, gen_kwargs)):
        texts[n] = text
        self.cache_hook.add_partial("generate_until", requests[n].args, text)
    return texts

  def _generate(self, contexts: list[str], gen_kwargs: dict) -> list[str]:
    kwargs = normalize_gen_kwargs(gen_kwargs, DEFAULT_MAX_GEN_TOKS)
    if kwargs.get("do_sample"):
      raise ConfigError(f"lm-eval generate_until: sampling ({gen_kwargs}) is not supported; "
                        "jaxlm decodes greedily (do_sample=false)")
    tok = self.loaded.tokenizer
    max_new = min(kwargs["max_gen_toks"], self.max_length - 1)
    if max_new < 1:
      return [""] * len(contexts)
    start = tok.token_to_id(scoring.context_token(self.loaded))
    prompts = [([start] + ids)[-(self.max_length - max_new):]
               for ids, _ in scoring.encode(self.loaded, contexts)]
    if self._step is None:  # compiled once for every batch of this model
      self._step = make_step(nnx.split(self.loaded.model)[0])
    order = sorted(range(len(prompts)), key=lambda n: -len(prompts[n]))  # similar lengths batch
    stop_id = tok.token_to_id(SEP)  # documents close with [SEP]
    texts: list[str] = [""] * len(prompts)
    for first in range(0, len(order), self.batch_size):
      batch = order[first:first + self.batch_size]
      new_ids = generate(self.loaded.model, [prompts[n] for n in batch], max_new,
                         temperature=0.0, stop_id=stop_id,
                         vocab_in_use=scoring.vocab_in_use(self.loaded), step=self._step)
      for n, ids in zip(batch, new_ids):
        text = tok.decode([t for t in ids if t != stop_id])
        texts[n] = postprocess_generated_text(text, kwargs["until"], None)
    return texts


def _rows(batch_size: int | str, max_batch_size: int | None) -> int:
  """The harness's batch_size (an int, its string, or 'auto' / 'auto:N') as rows per call."""
  if isinstance(batch_size, str) and batch_size.startswith("auto"):
    return min(scoring.ROWS, max_batch_size or scoring.ROWS)
  try:
    rows = int(batch_size)
  except ValueError:
    raise ConfigError(f"lm-eval: batch_size={batch_size!r}: an integer or 'auto'") from None
  if rows < 1:
    raise ConfigError(f"lm-eval: batch_size={rows}: must be >= 1")
  return rows
