"""Hugging Face export: a jaxlm run as a transformers directory (config.json + model.safetensors
+ tokenizer files) that gives the run's logits, or a one-line DataError saying why none can.

  objective, model                      transformers class
  mlm, post-LN                          BertForMaskedLM
  mlm_nsp, post-LN                      BertForPreTraining (MLM + next-sentence head)
  mlm, pre-LN, model.embed_norm=true    RobertaPreLayerNormForMaskedLM
  mlm, pre-LN, model.embed_norm=false   XLMRobertaXLForMaskedLM (embeddings not normalised,
                                        pre-LN blocks, one final LayerNorm: jaxlm's pre-LN exactly)
  clm, pre-LN                           GPT2LMHeadModel

The weight mapping is the one `hf_import` documents, run backwards, so every export loads back
with `jaxlm.load` / `from_hf` to the same parameters (but for a clm model's token-type row 0,
which GPT-2 keeps folded into wpe, as clm rows are all type 0). Refused: positions other than
learned, post-LN clm, embed_norm clm, pre-LN mlm_nsp (no pre-LN transformers class has an NSP
head), pre-LN mlm with tanh GELU (RoBERTa-family MLM heads apply exact GELU), prefix-LM attention.
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
from jaxlm.interop.hf_layouts import (
  ACTIVATION_TO_HF,
  BERT,
  ENCODER_LINEAR,
  GPT2_PLAIN,
  NSP_ARCH,
  QKV,
  ROBERTA_PRELN,
  TYPES,
  XLMR_XL,
  EncoderLayout,
)

Writer = Callable[[Config, dict[str, np.ndarray], Tokenizer | None],
                  tuple[dict, dict[str, np.ndarray]]]


def to_hf(config: Config, params: nnx.State, out_dir: str | Path,
          tokenizer: Tokenizer | None = None) -> Path:
  """Writes a jaxlm model as the transformers class the module docstring maps it to:
  config.json, model.safetensors and, given a tokenizer, tokenizer.json + tokenizer_config.json.
  Returns `out_dir`. Anything no class represents exactly raises DataError (one line)."""
  from safetensors.numpy import save_file  # noqa: PLC0415 - only conversions need it

  m = config.model
  if m.position != "learned":
    raise DataError(f"to_hf: model.position={m.position}; BERT, RoBERTa and GPT-2 have learned "
                    "absolute positions only")
  if tokenizer is not None and tokenizer.get_vocab_size() > m.vocab_size:
    raise DataError(f"to_hf: the tokenizer has {tokenizer.get_vocab_size()} tokens but the "
                    f"model's vocabulary only {m.vocab_size}; is it the run's tokenizer.json?")
  write = _writer(config)
  hf_config, tensors = write(config, _flat_stacked(config, params), tokenizer)
  out_dir = Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / "config.json").write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n")
  # transformers refuses safetensors files without format metadata.
  save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()},
            str(out_dir / "model.safetensors"), metadata={"format": "pt"})
  if tokenizer is not None:
    _write_tokenizer(tokenizer, out_dir, m.max_seq_len)
  return out_dir


def _writer(config: Config) -> Writer:
  """The writer for the class that represents this run exactly; DataError where none does."""
  m, objective = config.model, objectives.get(config.objective)
  name = config.objective
  if objective.hf_family is None:
    raise DataError(f"to_hf: objective={name}; no transformers architecture has its attention "
                    f"({objective.attention}, as in prefix-LM)")
  if objective.hf_family == "gpt2":
    if m.norm != "pre":
      raise DataError(f"to_hf: objective={name} with model.norm={m.norm}; GPT-2 ({name}) is "
                      "pre-LN")
    if m.embed_norm:
      raise DataError(f"to_hf: objective={name} with model.embed_norm=true; GPT-2 has no "
                      "embedding LayerNorm (needs embed_norm=false)")
    return _gpt2_out
  if m.norm == "post":
    return functools.partial(_encoder_out, layout=BERT)
  layout = ROBERTA_PRELN if m.embed_norm else XLMR_XL
  if objective.nsp:
    raise DataError(f"to_hf: objective={name} with model.norm=pre; transformers' pre-LN "
                    f"masked LMs ({ROBERTA_PRELN.archs[0]}, {XLMR_XL.archs[0]}) have no "
                    f"next-sentence head; only {NSP_ARCH} has, for model.norm=post")
  if m.activation != "gelu_exact":
    raise DataError(f"to_hf: model.activation={m.activation} with model.norm=pre; "
                    f"{layout.archs[0]}'s MLM head always applies exact GELU, so only "
                    "activation=gelu_exact exports exactly (train with "
                    "--config.model.activation=gelu_exact)")
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


def _special_ids(tokenizer: Tokenizer | None) -> dict[str, int | None]:
  if tokenizer is None:
    return {}
  return {name: tokenizer.token_to_id(name) for name in jaxlm_tokenizer.SPECIALS}


def _layer(p: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
  """Layer i's weights by their name inside a block ('attn.query.kernel', ...)."""
  prefix = "backbone.blocks."
  return {k[len(prefix):]: v[i] for k, v in p.items() if k.startswith(prefix)}


def _heads_out(kernel_DxHxK: np.ndarray) -> np.ndarray:
  return kernel_DxHxK.reshape(kernel_DxHxK.shape[0], -1)


def _encoder_out(config: Config, p: dict[str, np.ndarray], tokenizer: Tokenizer | None, *,
                 layout: EncoderLayout) -> tuple[dict, dict[str, np.ndarray]]:
  """BERT, RoBERTa-PreLayerNorm or XLM-R XL, as `layout` places the LayerNorms and names."""
  m, L, D = config.model, config.model.num_layers, config.model.embed_dim
  specials = _special_ids(tokenizer)
  pad = specials.get(jaxlm_tokenizer.PAD) or 0
  nsp = "nsp_head.pooler.kernel" in p
  # RoBERTa numbers real tokens from pad + 1; rows 0..pad serve only [PAD] tokens: zeros.
  offset = pad + 1 if layout.position_offset else 0
  pos_PxD = np.concatenate([np.zeros((offset, D), np.float32), p["backbone.pos_embed.embedding"]])
  # A model without token types gets zero rows: every type then behaves like jaxlm's input.
  types_NxD = p.get("backbone.type_embed.embedding", np.zeros((layout.type_rows, D), np.float32))
  hf_config = {
    "architectures": [NSP_ARCH if nsp else layout.archs[0]], "model_type": layout.model_type,
    "vocab_size": m.vocab_size, "hidden_size": D, "num_hidden_layers": L,
    "num_attention_heads": m.num_heads, "intermediate_size": m.mlp_dim,
    "hidden_act": ACTIVATION_TO_HF[m.activation], "max_position_embeddings": pos_PxD.shape[0],
    "type_vocab_size": types_NxD.shape[0], "layer_norm_eps": m.layer_norm_eps,
    # jaxlm drops out hidden states only, never attention probabilities.
    "hidden_dropout_prob": m.dropout, "attention_probs_dropout_prob": m.attention_dropout,
    "initializer_range": 0.02, "tie_word_embeddings": True, "is_decoder": False,
    "add_cross_attention": False, "pad_token_id": pad, "dtype": "float32",
  }
  if layout.position_offset:  # RoBERTa configs name their sequence delimiters
    hf_config.update(bos_token_id=specials.get(jaxlm_tokenizer.CLS),
                     eos_token_id=specials.get(jaxlm_tokenizer.SEP))
  else:
    hf_config["position_embedding_type"] = "absolute"
  b = layout.prefix
  t = {
    b + "embeddings.word_embeddings.weight": p["backbone.embed.embedding"],
    b + "embeddings.position_embeddings.weight": pos_PxD,
    b + TYPES: types_NxD,
    f"{layout.head_dense}.weight": p["mlm_head.transform.kernel"].T,
    f"{layout.head_dense}.bias": p["mlm_head.transform.bias"],
    f"{layout.head_norm}.weight": p["mlm_head.norm.scale"],
    f"{layout.head_norm}.bias": p["mlm_head.norm.bias"],
    layout.head_biases[0]: p["mlm_head.bias"],
  }
  for hf_name, ours in layout.norms:
    t[f"{b}{hf_name}.weight"], t[f"{b}{hf_name}.bias"] = p[f"{ours}.scale"], p[f"{ours}.bias"]
  for i in range(L):
    q, layer = f"{b}encoder.layer.{i}.", _layer(p, i)
    t.update({q + hf_name: layer[ours] for hf_name, ours in layout.plain()})
    t.update({q + hf_name: layer[ours].T for hf_name, ours in ENCODER_LINEAR})
    for name in QKV:
      t[f"{q}attention.self.{name}.weight"] = _heads_out(layer[f"attn.{name}.kernel"]).T
      t[f"{q}attention.self.{name}.bias"] = layer[f"attn.{name}.bias"].reshape(-1)
    t[f"{q}attention.output.dense.weight"] = layer["attn.out.kernel"].reshape(-1, D).T
  if nsp:  # BertForPreTraining: bert.pooler (dense + tanh on [CLS]), then cls.seq_relationship
    t.update({f"{b}pooler.dense.weight": p["nsp_head.pooler.kernel"].T,
              f"{b}pooler.dense.bias": p["nsp_head.pooler.bias"],
              "cls.seq_relationship.weight": p["nsp_head.classifier.kernel"].T,
              "cls.seq_relationship.bias": p["nsp_head.classifier.bias"]})
  return hf_config, t


def _gpt2_out(config: Config, p: dict[str, np.ndarray],
              tokenizer: Tokenizer | None) -> tuple[dict, dict[str, np.ndarray]]:
  m, L = config.model, config.model.num_layers
  # jaxlm closes every document with [SEP]: it is the end-of-text token a generator stops at.
  eos = _special_ids(tokenizer).get(jaxlm_tokenizer.SEP)
  hf_config = {
    "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": m.vocab_size,
    "n_embd": m.embed_dim, "n_layer": L, "n_head": m.num_heads, "n_inner": m.mlp_dim,
    "n_positions": m.max_seq_len, "activation_function": ACTIVATION_TO_HF[m.activation],
    "layer_norm_epsilon": m.layer_norm_eps, "resid_pdrop": m.dropout, "embd_pdrop": m.dropout,
    "attn_pdrop": m.attention_dropout, "initializer_range": 0.02, "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
    "tie_word_embeddings": True, "bos_token_id": eos, "eos_token_id": eos, "dtype": "float32",
  }
  pos_PxD = p["backbone.pos_embed.embedding"]
  if "backbone.type_embed.embedding" in p:
    # clm rows carry no token types, so every token adds type 0: a constant GPT-2 keeps in wpe.
    pos_PxD = pos_PxD + p["backbone.type_embed.embedding"][0]
  t = {"transformer.wte.weight": p["backbone.embed.embedding"],
       "transformer.wpe.weight": pos_PxD,
       "transformer.ln_f.weight": p["backbone.norm.scale"],
       "transformer.ln_f.bias": p["backbone.norm.bias"]}
  for i in range(L):
    q, layer = f"transformer.h.{i}.", _layer(p, i)
    t.update({q + hf_name: layer[ours] for hf_name, ours in GPT2_PLAIN})
    t[f"{q}attn.c_attn.weight"] = np.concatenate(
      [_heads_out(layer[f"attn.{name}.kernel"]) for name in QKV], axis=1)
    t[f"{q}attn.c_attn.bias"] = np.concatenate(
      [layer[f"attn.{name}.bias"].reshape(-1) for name in QKV])
    t[f"{q}attn.c_proj.weight"] = layer["attn.out.kernel"].reshape(-1, m.embed_dim)
  return hf_config, t


def _write_tokenizer(tokenizer: Tokenizer, out_dir: Path, max_len: int) -> None:
  """tokenizer.json plus the tokenizer_config.json AutoTokenizer reads its special tokens from."""
  tokenizer.save(str(out_dir / "tokenizer.json"))
  roles = {"pad_token": jaxlm_tokenizer.PAD, "unk_token": jaxlm_tokenizer.UNK,
           "cls_token": jaxlm_tokenizer.CLS, "sep_token": jaxlm_tokenizer.SEP,
           "mask_token": jaxlm_tokenizer.MASK}
  present = {role: tok for role, tok in roles.items() if tokenizer.token_to_id(tok) is not None}
  tok_config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_len,
                "clean_up_tokenization_spaces": False, **present}
  (out_dir / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
  (out_dir / "special_tokens_map.json").write_text(json.dumps(present, indent=2) + "\n")
