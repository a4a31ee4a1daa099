"""Hugging Face export: a jaxlm run as a transformers directory (config.json + model.safetensors
+ tokenizer files) that gives the run's logits, or a one-line DataError saying why none can.

  objective, model                      transformers class
  mlm, post-LN                          BertForMaskedLM
  mlm_nsp, post-LN                      BertForPreTraining (MLM + next-sentence head)
  mlm, pre-LN, model.embed_norm=true    RobertaPreLayerNormForMaskedLM
  mlm, pre-LN, model.embed_norm=false   XLMRobertaXLForMaskedLM (embeddings not normalised,
                                        pre-LN blocks, one final LayerNorm: jaxlm's pre-LN exactly)
  clm, pre-LN                           GPT2LMHeadModel
  clm, pre-LN, model.position=rope      GPTNeoXForCausalLM (full-width rotary, rotate-half as
                                        jaxlm's, sequential residual: jaxlm's pre-LN block)
  mlm, pre-LN, model.position=rope      EsmForMaskedLM (ESM-2: rotary, pre-LN, optional
                                        embedding LayerNorm, BERT's MLM head, exact GELU)

The weight mapping is the one `hf_import` documents, run backwards, so every export but
GPT-NeoX's and ESM's (export only) loads back with `jaxlm.load` / `from_hf` to the same
parameters (but for a clm model's token-type row 0, which GPT-2 keeps folded into wpe, as clm
rows are all type 0). Refused: sinusoidal or no positions, post-LN RoPE, post-LN clm,
embed_norm clm, pre-LN mlm_nsp (no pre-LN transformers class has an NSP head), pre-LN mlm with
tanh GELU (RoBERTa-family MLM heads and all of ESM apply exact GELU), prefix-LM attention.
`export_blocker` says which from the config alone, so `jaxlm train` says it before training.
This module picks the class (or says why none fits) and writes the files; each class's
config.json values and tensors come from its writer in `hf_writers`. A fine-tuned classifier
exports through `hf_classifier`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable

import numpy as np
from flax import nnx
from tokenizers import Tokenizer

from jaxlm import objectives
from jaxlm.config import Config, DataError
from jaxlm.data import tokenizer as jaxlm_tokenizer
from jaxlm.interop.hf_import import _stack
from jaxlm.interop.hf_layouts import BERT, ESM, NSP_ARCH, ROBERTA_PRELN, XLMR_XL
from jaxlm.interop.hf_writers import _encoder_out, _esm_out, _gpt2_out, _max_positions, _neox_out

Writer = Callable[[Config, dict[str, np.ndarray], Tokenizer | None],
                  tuple[dict, dict[str, np.ndarray]]]


def to_hf(config: Config, params: nnx.State, out_dir: str | Path,
          tokenizer: Tokenizer | None = None) -> Path:
  """Writes a jaxlm model as the transformers class the module docstring maps it to:
  config.json, model.safetensors and, given a tokenizer, tokenizer.json + tokenizer_config.json.
  Returns `out_dir`. Anything no class represents exactly raises DataError (one line)."""
  write = _writer(config)
  if isinstance(write, str):
    raise DataError(f"to_hf: {write}")
  _check_vocab(config, tokenizer)
  hf_config, tensors = write(config, _flat_stacked(config, params), tokenizer)
  out_dir = _write_model(out_dir, hf_config, tensors)
  if tokenizer is not None:
    _write_tokenizer(tokenizer, out_dir, _max_positions(config))
  return out_dir


def _check_vocab(config: Config, tokenizer: Tokenizer | None) -> None:
  vocab = config.model.vocab_size
  if tokenizer is not None and tokenizer.get_vocab_size() > vocab:
    raise DataError(f"to_hf: the tokenizer has {tokenizer.get_vocab_size()} tokens but the "
                    f"model's vocabulary only {vocab}; is it the run's tokenizer.json?")


def _write_model(out_dir: str | Path, hf_config: dict, tensors: dict[str, np.ndarray]) -> Path:
  """config.json and model.safetensors in `out_dir` (created)."""
  from safetensors.numpy import save_file  # noqa: PLC0415 - only conversions need it

  out_dir = Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / "config.json").write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n")
  # transformers refuses safetensors files without format metadata.
  save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()},
            str(out_dir / "model.safetensors"), metadata={"format": "pt"})
  return out_dir


def export_blocker(config: Config) -> str | None:
  """Why `to_hf` will refuse this run (one line, without the `to_hf:` prefix), or None when a
  transformers class reproduces its logits. Reads the config alone, so a run can be told before
  it trains."""
  write = _writer(config)
  return write if isinstance(write, str) else None


def _writer(config: Config) -> Writer | str:
  """The writer for the class that represents this run exactly, or why none does."""
  objective = objectives.get(config.objective)
  if objective.hf_family is None:
    return (f"objective={config.objective}; no transformers architecture has its attention "
            f"({objective.attention}, as in prefix-LM)")
  if objective.hf_family == "gpt2":
    return _decoder_writer(config)
  return _encoder_writer(config, objective.nsp)


def _decoder_writer(config: Config) -> Writer | str:
  """GPT-2 for learned positions, GPT-NeoX for RoPE: both pre-LN without an embedding norm."""
  m, name = config.model, config.objective
  family = {"learned": "GPT-2", "rope": "GPT-NeoX"}.get(m.position)
  if family is None:
    return (f"model.position={m.position} with objective={name}; GPT-2 has learned absolute "
            "positions and GPT-NeoX rotary ones (model.position=learned or rope)")
  if m.norm != "pre":
    return f"objective={name} with model.norm={m.norm}; {family} ({name}) is pre-LN"
  if m.embed_norm:
    return (f"objective={name} with model.embed_norm=true; {family} has no embedding "
            "LayerNorm (needs embed_norm=false)")
  return _gpt2_out if family == "GPT-2" else _neox_out


def _encoder_writer(config: Config, nsp: bool, mlm_head: bool = True) -> Writer | str:
  """BERT and the pre-LN RoBERTa classes for learned positions, ESM for RoPE. `mlm_head`:
  whether the MLM head is written (a fine-tuned classifier's backbone has none)."""
  m, name = config.model, config.objective
  if m.position not in ("learned", "rope"):
    return (f"model.position={m.position} with objective={name}; transformers' masked LMs "
            "have learned absolute or rotary positions (model.position=learned or rope)")
  if m.norm == "post":
    if m.position == "rope":
      return (f"model.position=rope with model.norm=post; the rotary masked LM jaxlm exports "
              f"to ({ESM.archs[0]}) is pre-LN")
    return functools.partial(_encoder_out, layout=BERT)
  layout = ESM if m.position == "rope" else ROBERTA_PRELN if m.embed_norm else XLMR_XL
  if nsp and layout is ESM:
    return (f"objective={name} with model.position=rope; {ESM.archs[0]} has no next-sentence "
            "head")
  if nsp:
    return (f"objective={name} with model.norm=pre; transformers' pre-LN masked LMs "
            f"({ROBERTA_PRELN.archs[0]}, {XLMR_XL.archs[0]}) have no next-sentence head; only "
            f"{NSP_ARCH} has, for model.norm=post")
  if m.activation != "gelu_exact" and (mlm_head or layout is ESM):
    where = "MLP and MLM head always apply" if layout is ESM else "MLM head always applies"
    return (f"model.activation={m.activation} with model.norm=pre; {layout.archs[0]}'s {where} "
            "exact GELU, so only activation=gelu_exact exports exactly (train with "
            "--config.model.activation=gelu_exact)")
  if layout is ESM:
    return _esm_out
  return functools.partial(_encoder_out, layout=layout)


def _flat_stacked(config: Config, params: nnx.State) -> dict[str, np.ndarray]:
  """Parameters by dotted name as host float32 arrays, blocks stacked on a leading L axis
  whether or not the run scanned its layers."""
  flat = {".".join(map(str, path)): np.asarray(v.get_value() if isinstance(v, nnx.Variable)
                                                else v, np.float32)
          for path, v in nnx.to_flat_state(params)}
  if config.model.scan_layers:
    return flat
  out = {k: v for k, v in flat.items() if not k.startswith("backbone.blocks.")}
  per_layer = [{k[len(f"backbone.blocks.{i}."):]: v for k, v in flat.items()
                if k.startswith(f"backbone.blocks.{i}.")} for i in range(config.model.num_layers)]
  out.update(_stack(per_layer))
  return out


def _write_tokenizer(tokenizer: Tokenizer, out_dir: Path, max_len: int,
                     input_names: tuple[str, ...] = ()) -> None:
  """tokenizer.json plus the tokenizer_config.json AutoTokenizer reads its special tokens from;
  `input_names`, when given, are the only inputs AutoTokenizer returns."""
  tokenizer.save(str(out_dir / "tokenizer.json"))
  roles = {"pad_token": jaxlm_tokenizer.PAD, "unk_token": jaxlm_tokenizer.UNK,
           "cls_token": jaxlm_tokenizer.CLS, "sep_token": jaxlm_tokenizer.SEP,
           "mask_token": jaxlm_tokenizer.MASK}
  present = {role: tok for role, tok in roles.items() if tokenizer.token_to_id(tok) is not None}
  tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_len,
                "clean_up_tokenization_spaces": False, **present}
  if input_names:
    tok_config["model_input_names"] = list(input_names)
  (out_dir / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
  (out_dir / "special_tokens_map.json").write_text(json.dumps(present, indent=2) + "\n")
