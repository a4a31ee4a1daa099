"""What an objective is: one record holding everything the rest of jaxlm asks of it.

The backbone, train step, FLOP count, inference API, fine-tuning, Hugging Face export and the
comparison read these fields; none of them compares objective names.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal

import jax

from jaxlm.model.masks import MaskKind

# (model, batch, key, config, special, dropout_key) -> {"loss_sum", "correct_sum", "count"}
LossSums = Callable[..., dict[str, jax.Array]]
# (model, tokens_BxT, prefix_len_B) -> logits_BxTxV, float32
# (model, tokens_BxT, prefix_len_B, positions_BxK=None, segment_ids_BxT=None)
InferenceLogits = Callable[..., jax.Array]


@dataclasses.dataclass(frozen=True)
class Objective:
  """One pre-training objective.

  name: the `config.objective` value.
  attention: the mask kind it trains with.
  head: 'tied' (the tied vocabulary projection) or 'mlm_transform' (BERT's dense + LayerNorm
    transform, then the tied decoder with its own bias).
  classifier_attention, classifier_readout: how fine-tuning reads the backbone: BERT reads
    'first' ([CLS]) bidirectionally; GPT-1 keeps causal attention and reads the 'last' real token,
    the only one that has seen the whole input.
  reports_perplexity: whether its loss is a next-token cross-entropy (perplexity, bits per byte).
  generates: whether it can continue text left to right.
  hf_family: the transformers family it exports to ('bert', 'gpt2'), or None.
  loss_sums: summed loss, correct predictions and predicted-token count of a batch.
  inference_logits: (model, tokens_BxT, prefix_len_B, positions_BxK=None,
    segment_ids_BxT=None) -> float32 logits at every position for `jaxlm.load(...).logits`, or
    only at `positions_BxK` (zero-shot scoring); `segment_ids_BxT` (0: padding) keeps right
    padding out of every real token's attention.
  head_macs_per_token: forward multiply-adds of the head per input token (for FLOP counts).
  read_fraction: (config) -> the share of a row's positions its loss reads, at which alone the
    backbone's last layer runs (`Backbone`'s queries; MLM: its masked positions), for FLOP
    counts; None: every position.
  rows: the rows it reads: 'packed' documents (every objective's default, so variants see the
    same tokens in the same order) or 'sentence_pairs' ([CLS] A [SEP] B [SEP] with token types
    and next-sentence labels, `jaxlm.data.sentence_pairs`).
  token_types: how many token-type (segment) embeddings its rows need (0: none).
  nsp: whether the model carries BERT's next-sentence head.
  pll_reader: for a generating objective that also trains masked rows (the hybrid: MNTP's),
    the objective whose reading of them its pseudo-log-likelihood uses (`jaxlm eval
    --scoring pll`); None: PLL only for objectives that do not generate.
  predicts_next: whether a masked token is predicted one position earlier (MNTP): its
    pseudo-log-likelihood reads token i at position i−1, after the token documents open with.
  unmasks: whether it generates text by iterative unmasking (masked diffusion, `mdlm`: trained
    at every mask rate, so it can start from a row of [MASK] tokens; `generate.unmask`).
  likelihood: what its loss says about the likelihood of the data: 'exact' (a next-token
    cross-entropy, as `reports_perplexity`), 'bound' (an upper bound on the negative
    log-likelihood per token, a diffusion ELBO: exp(loss) is logged as `perplexity_bound`) or
    'none' (MLM's loss on a fixed share of masked tokens).
  """

  name: str
  attention: MaskKind
  head: Literal["tied", "mlm_transform"]
  classifier_attention: MaskKind
  classifier_readout: Literal["first", "last"]
  reports_perplexity: bool
  generates: bool
  hf_family: str | None
  loss_sums: LossSums
  inference_logits: InferenceLogits
  head_macs_per_token: Callable[[Any], float]
  read_fraction: Callable[[Any], float] | None = None
  rows: Literal["packed", "sentence_pairs"] = "packed"
  token_types: int = 0
  nsp: bool = False
  likelihood: Literal["exact", "bound", "none"] = "none"
  predicts_next: bool = False
  pll_reader: str | None = None
  unmasks: bool = False
  phases: tuple[Objective, ...] = ()
  phase_of: Callable[..., jax.Array] | None = None
