"""Fine-tuned classifiers (`jaxlm finetune`'s kept one) as transformers sequence classifiers.

A classifier (`classifier_to_hf`: the parameters, config and description that `jaxlm finetune`
keeps) exports where a transformers sequence classifier computes its logits:

  classifier, model                         transformers class
  causal, readout last, pre-LN              GPT2ForSequenceClassification
  the same, model.position=rope             GPTNeoXForSequenceClassification
  bidirectional, readout first, post-LN     BertForSequenceClassification
  the same, pre-LN, model.embed_norm=true   RobertaPreLayerNormForSequenceClassification
  the same, pre-LN, model.embed_norm=false  XLMRobertaXLForSequenceClassification
  the same, pre-LN, model.position=rope     EsmForSequenceClassification (exact GELU only)

The decoder classes score every position with a bias-free Linear and keep the last non-[PAD]
token's scores: jaxlm's last-real-token read-out on right-padded `[CLS] a [SEP] (b [SEP])`
rows. The head's bias moves into the final LayerNorm's bias, which nothing but the score layer
reads there. The encoder classes read the first token ([CLS]) through a dense layer and tanh
before their output layer, which jaxlm's classifier (one Linear on [CLS]) has not: the export
makes that pooler the identity to float32 precision, dense = 2^-k I (bias 0) and output weight
W 2^k, with k chosen from the final LayerNorm's scale and bias so that every input to tanh is
below 2^-12 in magnitude, where float32 tanh(x) rounds to x (its relative error x²/3 < 2^-25);
scaling by powers of two is exact. Fine-tuning such an export further in transformers starts
from that near-linear pooler and a large output weight.
Refused: the mean read-out, pair tasks whose token-type row 1 differs from row 0 where the class
has no token types (GPT-2, GPT-NeoX, ESM), and whatever the backbone's language-model export
refuses (`hf_export`; the RoBERTa classes take tanh GELU here, having no MLM head).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from flax import nnx
from tokenizers import Tokenizer, processors

from jaxlm.config import Config, DataError
from jaxlm.data import tokenizer as jaxlm_tokenizer
from jaxlm.interop.hf_export import (
  Writer,
  _check_vocab,
  _decoder_writer,
  _encoder_writer,
  _flat_stacked,
  _write_model,
  _write_tokenizer,
)
from jaxlm.interop.hf_layouts import TYPES


def classifier_to_hf(config: Config, params: nnx.State, meta: dict, out_dir: str | Path,
                     tokenizer: Tokenizer, labels: Sequence[str] = (),
                     pairs: bool = True) -> Path:
  """Writes a fine-tuned classifier as the transformers sequence classifier the module
  docstring maps it to, with a tokenizer that encodes texts and pairs as fine-tuning did.
  `config`: the pre-trained run's; `params`: the Classifier's state; `meta`: its description
  (task, num_labels, attention, readout, max_seq_len); `labels`: names in id order (id2label);
  `pairs`: whether the task reads (a, b) pairs, whose b tokens are type 1. Returns `out_dir`.
  What no class reproduces raises DataError (one line)."""
  write = _classifier_writer(config, meta)
  if isinstance(write, str):
    raise DataError(f"to_hf: {write}")
  _check_vocab(config, tokenizer)
  p = _flat_stacked(config, params)
  hf_config, tensors = write(config, p, tokenizer)
  # A class with a token-type table reads a pair's b tokens from its row 1, as jaxlm does.
  types = [v for name, v in tensors.items() if name.endswith(TYPES)]
  typed = bool(types) and len(types[0]) >= 2
  if meta["attention"] == "causal":
    hf_config, tensors = _as_sequence_classifier(hf_config, tensors, p, meta, tokenizer)
  else:
    hf_config, tensors = _as_encoder_classifier(hf_config, tensors, p, config)
  if pairs and not typed and (why := _pair_types_blocker(p, meta["task"], hf_config)):
    raise DataError(f"to_hf: {why}")
  hf_config.update(_label_fields(meta, labels))
  out_dir = _write_model(out_dir, hf_config, tensors)
  # token_type_ids only for a class that has the rows: GPT-2 would add word-embedding rows for
  # them, and classes without a table have the types folded.
  inputs = ("input_ids", "token_type_ids", "attention_mask") if typed else ("input_ids",
                                                                            "attention_mask")
  _write_tokenizer(_pair_template(tokenizer), out_dir, meta["max_seq_len"], input_names=inputs)
  return out_dir


def _classifier_writer(config: Config, meta: dict) -> Writer | str:
  """The backbone's writer for a classifier that a transformers sequence classifier reproduces,
  or why none does."""
  attention, readout, task = meta["attention"], meta["readout"], meta["task"]
  if attention not in ("causal", "bidirectional"):
    return (f"the {task} classifier reads its backbone with {attention} attention; "
            "transformers' sequence classifiers are causal or bidirectional")
  wanted = "last" if attention == "causal" else "first"
  if readout != wanted:
    classes = ("GPT-2's and GPT-NeoX's" if attention == "causal"
               else "BERT's, the RoBERTa classes' and ESM's")
    return (f"the {task} classifier reads out the {readout} token(s) with {attention} "
            f"attention (config.finetune.readout); {classes} sequence classifiers read the "
            f"{wanted} token only (fine-tune with config.finetune.readout=objective)")
  if attention == "causal":
    return _decoder_writer(config)
  return _encoder_writer(config, nsp=False, mlm_head=False)


def _pair_types_blocker(p: dict[str, np.ndarray], task: str, hf_config: dict) -> str | None:
  """Why a pair task's logits need a token-type row the class has no table for, or None. Type 0
  is folded into the embeddings as for the language model; a pair's b tokens add row 1."""
  types_NxD = p.get("backbone.type_embed.embedding")
  if types_NxD is None or len(types_NxD) < 2 or np.array_equal(types_NxD[1], types_NxD[0]):
    return None
  gap = float(np.max(np.abs(types_NxD[1] - types_NxD[0])))
  return (f"the {task} classifier reads (a, b) pairs whose b tokens add token-type row 1 "
          f"(model.type_vocab_size={len(types_NxD)}), which differs from row 0 by up to "
          f"{gap:.3g}; {hf_config['architectures'][0]} has no token-type table to hold it")


def _label_fields(meta: dict, labels: Sequence[str]) -> dict:
  """num_labels, the task, the problem type and, given names, id2label and label2id."""
  num_labels = meta["num_labels"]
  fields = {"num_labels": num_labels, "finetuning_task": meta["task"],
            "problem_type": "regression" if num_labels == 1 else "single_label_classification"}
  if len(labels) == num_labels and num_labels > 1:
    fields["id2label"] = {str(i): name for i, name in enumerate(labels)}
    fields["label2id"] = {name: i for i, name in enumerate(labels)}
  return fields


# The sequence class of each decoder family, and the final LayerNorm bias only its score reads.
SEQUENCE_CLASSES = {"gpt2": ("GPT2ForSequenceClassification", "transformer.ln_f.bias"),
                    "gpt_neox": ("GPTNeoXForSequenceClassification",
                                 "gpt_neox.final_layer_norm.bias")}
# How far the exported logits may move from jaxlm's through the folded head bias.
FOLD_TOL = 1e-5


def _as_sequence_classifier(hf_config: dict, t: dict[str, np.ndarray], p: dict[str, np.ndarray],
                            meta: dict, tokenizer: Tokenizer) -> tuple[dict, dict[str, np.ndarray]]:
  """A decoder language model's config and tensors turned into its sequence classifier's, with
  jaxlm's head as the bias-free `score` layer and its bias folded into the final LayerNorm."""
  arch, norm_bias = SEQUENCE_CLASSES[hf_config["model_type"]]
  pad = tokenizer.token_to_id(jaxlm_tokenizer.PAD)
  if pad is None:
    raise DataError(f"to_hf: the tokenizer has no {jaxlm_tokenizer.PAD} token, by which "
                    f"{arch} finds each row's last real token")
  kernel_DxC, bias_C = p["head.kernel"], p["head.bias"]
  folded_D = _fold_head_bias(kernel_DxC, bias_C, t[norm_bias], arch)
  t = {k: v for k, v in t.items() if k != "embed_out.weight"}  # no LM head in this class
  t[norm_bias], t["score.weight"] = folded_D, kernel_DxC.T
  # the class scores the rightmost token that is not pad_token_id
  return {**hf_config, "architectures": [arch], "pad_token_id": pad}, t


# Each encoder family's sequence class: (class, pooler dense before tanh, output layer).
ENCODER_CLASSES = {
  "bert": ("BertForSequenceClassification", "bert.pooler.dense", "classifier"),
  "roberta-prelayernorm": ("RobertaPreLayerNormForSequenceClassification", "classifier.dense",
                           "classifier.out_proj"),
  "xlm-roberta-xl": ("XLMRobertaXLForSequenceClassification", "classifier.dense",
                     "classifier.out_proj"),
  "esm": ("EsmForSequenceClassification", "classifier.dense", "classifier.out_proj"),
}
# Every input to the pooler's tanh stays below 2^-TANH_BITS, where float32 tanh(x) rounds to x.
TANH_BITS = 12


def _as_encoder_classifier(hf_config: dict, t: dict[str, np.ndarray], p: dict[str, np.ndarray],
                           config: Config) -> tuple[dict, dict[str, np.ndarray]]:
  """An encoder's config and tensors (no MLM head) turned into its sequence classifier's, whose
  dense + tanh pooler passes [CLS]'s final state through unchanged (module docstring)."""
  arch, pooler, out = ENCODER_CLASSES[hf_config["model_type"]]
  k = _pooler_shift(p, config)
  D = config.model.embed_dim
  t = dict(t)
  t[f"{pooler}.weight"] = np.eye(D, dtype=np.float32) * np.float32(2.0 ** -k)
  t[f"{pooler}.bias"] = np.zeros(D, np.float32)
  t[f"{out}.weight"] = p["head.kernel"].T * np.float32(2.0 ** k)
  t[f"{out}.bias"] = p["head.bias"]
  return {**hf_config, "architectures": [arch]}, t


def _pooler_shift(p: dict[str, np.ndarray], config: Config) -> int:
  """k such that 2^-k times any final state is below 2^-TANH_BITS: a LayerNorm's output
  component i is at most |scale_i| sqrt(D - 1) + |bias_i| (a zero-mean, unit-variance vector
  of D components has none larger than sqrt(D - 1)). The final LayerNorm is the last block's
  MLP one in a post-LN model, the backbone's last one in a pre-LN model."""
  final = "backbone.blocks.mlp_norm" if config.model.norm == "post" else "backbone.norm"
  scale, bias = p[f"{final}.scale"], p[f"{final}.bias"]
  if config.model.norm == "post":
    scale, bias = scale[-1], bias[-1]
  bound = float(np.max(np.abs(scale) * np.sqrt(config.model.embed_dim - 1) + np.abs(bias)))
  return int(np.ceil(np.log2(max(bound, 2.0 ** -20)))) + TANH_BITS


def _fold_head_bias(kernel_DxC: np.ndarray, bias_C: np.ndarray, norm_bias_D: np.ndarray,
                    arch: str) -> np.ndarray:
  """The final LayerNorm bias β' with W β' = W β + b: the least-squares shift W⁺ b, exact when
  W's rows are independent. Refuses (DataError) when the float32 result, as transformers then
  computes it, would move the logits by more than FOLD_TOL (times the bias's scale)."""
  w_CxD = kernel_DxC.T.astype(np.float64)
  shift_D = np.linalg.lstsq(w_CxD, bias_C.astype(np.float64), rcond=None)[0]
  folded_D = (norm_bias_D + shift_D).astype(np.float32)
  stored_shift_D = folded_D.astype(np.float64) - norm_bias_D
  residual_C = w_CxD @ stored_shift_D - bias_C
  # A large shift makes score(h) a float32 sum of large terms that cancel: its rounding counts.
  rounding_C = np.finfo(np.float32).eps * (np.abs(w_CxD) @ np.abs(stored_shift_D))
  error = float(np.max(np.abs(residual_C) + rounding_C))
  if error > FOLD_TOL * max(1.0, float(np.max(np.abs(bias_C)))):
    C, D = w_CxD.shape
    raise DataError(f"to_hf: {arch}'s score layer has no bias, and the head's bias does not "
                    f"fold into the final LayerNorm's: through the {C} x {D} head weight it "
                    f"comes back only to {error:.2g} (rows not independent, or ill-conditioned)")
  return folded_D


def _pair_template(tokenizer: Tokenizer) -> Tokenizer:
  """A copy that adds the specials around texts and pairs as `jaxlm.eval.inputs.encode` does:
  `[CLS] a [SEP]` and `[CLS] a [SEP] b [SEP]`."""
  specials = [(tok, tokenizer.token_to_id(tok)) for tok in (jaxlm_tokenizer.CLS,
                                                            jaxlm_tokenizer.SEP)]
  templated = Tokenizer.from_str(tokenizer.to_str())
  templated.post_processor = processors.TemplateProcessing(
    single=f"{jaxlm_tokenizer.CLS} $A {jaxlm_tokenizer.SEP}",
    pair=f"{jaxlm_tokenizer.CLS} $A {jaxlm_tokenizer.SEP} $B:1 {jaxlm_tokenizer.SEP}:1",
    special_tokens=specials)
  return templated
