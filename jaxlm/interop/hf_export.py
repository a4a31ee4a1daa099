"""Hugging Face export: MLM runs with a BERT architecture as BertForMaskedLM, CLM runs with the
GPT-2 architecture as GPT2LMHeadModel (config.json + model.safetensors + tokenizer files).
The weight mapping is the one `hf_convert` documents, run backwards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from flax import nnx
from tokenizers import Tokenizer

from jaxlm.data import tokenizer as jaxlm_tokenizer
from jaxlm import objectives
from jaxlm.config import Config, DataError
from jaxlm.interop.hf_import import ACTIVATION_TO_HF, GPT2_PLAIN, BERT_LINEAR, BERT_PLAIN, QKV, _stack


def to_hf(config: Config, params: nnx.State, out_dir: str | Path,
          tokenizer: Tokenizer | None = None) -> Path:
  """Writes a jaxlm model as a transformers BertForMaskedLM (mlm, post-LN) or GPT2LMHeadModel
  (clm, pre-LN) directory: config.json, model.safetensors and, given a tokenizer, tokenizer.json
  + tokenizer_config.json. Returns `out_dir`. Anything else raises DataError (one line)."""
  from safetensors.numpy import save_file  # noqa: PLC0415 - only conversions need it

  m = config.model
  if m.position != "learned":
    raise DataError(f"to_hf: model.position={m.position}; BERT and GPT-2 have learned absolute "
                    "positions only")
  if tokenizer is not None and tokenizer.get_vocab_size() > m.vocab_size:
    raise DataError(f"to_hf: the tokenizer has {tokenizer.get_vocab_size()} tokens but the "
                    f"model's vocabulary only {m.vocab_size}; is it the run's tokenizer.json?")
  family = objectives.get(config.objective).hf_family
  if family is None:
    raise DataError(f"to_hf: objective={config.objective}; no transformers architecture has "
                    f"its attention ({objectives.get(config.objective).attention}, as in prefix-LM)")
  norm, write = _FAMILIES[family]
  if m.norm != norm:
    raise DataError(f"to_hf: objective={config.objective} with model.norm={m.norm}; "
                    f"{_NAMES[family]} ({config.objective}) is {norm}-LN")
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


def _bert_out(config: Config, p: dict[str, np.ndarray],
              tokenizer: Tokenizer | None) -> tuple[dict, dict[str, np.ndarray]]:
  m, L = config.model, config.model.num_layers
  specials = _special_ids(tokenizer)
  hf_config = {
    "architectures": ["BertForMaskedLM"], "model_type": "bert", "vocab_size": m.vocab_size,
    "hidden_size": m.embed_dim, "num_hidden_layers": L, "num_attention_heads": m.num_heads,
    "intermediate_size": m.mlp_dim, "hidden_act": ACTIVATION_TO_HF[m.activation],
    "max_position_embeddings": m.max_seq_len, "type_vocab_size": 2,
    "layer_norm_eps": m.layer_norm_eps, "position_embedding_type": "absolute",
    # jaxlm drops out hidden states only, never attention probabilities.
    "hidden_dropout_prob": m.dropout, "attention_probs_dropout_prob": m.attention_dropout,
    "initializer_range": 0.02, "tie_word_embeddings": True, "is_decoder": False,
    "pad_token_id": specials.get(jaxlm_tokenizer.PAD) or 0, "dtype": "float32",
  }
  t = {
    "bert.embeddings.word_embeddings.weight": p["backbone.embed.embedding"],
    "bert.embeddings.position_embeddings.weight": p["backbone.pos_embed.embedding"],
    # Token types are not a jaxlm concept: zeros make every type behave like jaxlm's input.
    "bert.embeddings.token_type_embeddings.weight": np.zeros((2, m.embed_dim), np.float32),
    "bert.embeddings.LayerNorm.weight": p["backbone.norm.scale"],
    "bert.embeddings.LayerNorm.bias": p["backbone.norm.bias"],
    "cls.predictions.transform.dense.weight": p["mlm_head.transform.kernel"].T,
    "cls.predictions.transform.dense.bias": p["mlm_head.transform.bias"],
    "cls.predictions.transform.LayerNorm.weight": p["mlm_head.norm.scale"],
    "cls.predictions.transform.LayerNorm.bias": p["mlm_head.norm.bias"],
    "cls.predictions.bias": p["mlm_head.bias"],
  }
  for i in range(L):
    q, layer = f"bert.encoder.layer.{i}.", _layer(p, i)
    t.update({q + hf_name: layer[ours] for hf_name, ours in BERT_PLAIN})
    t.update({q + hf_name: layer[ours].T for hf_name, ours in BERT_LINEAR})
    for name in QKV:
      t[f"{q}attention.self.{name}.weight"] = _heads_out(layer[f"attn.{name}.kernel"]).T
      t[f"{q}attention.self.{name}.bias"] = layer[f"attn.{name}.bias"].reshape(-1)
    t[f"{q}attention.output.dense.weight"] = layer["attn.out.kernel"].reshape(-1, m.embed_dim).T
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
  t = {"transformer.wte.weight": p["backbone.embed.embedding"],
       "transformer.wpe.weight": p["backbone.pos_embed.embedding"],
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


# The transformers family an objective exports to: the norm placement it requires, its writer.
_FAMILIES = {"bert": ("post", _bert_out), "gpt2": ("pre", _gpt2_out)}
_NAMES = {"bert": "BERT", "gpt2": "GPT-2"}
