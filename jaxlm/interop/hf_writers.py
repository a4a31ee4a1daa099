"""The export's writers, one per transformers class: each turns a run's parameters (flat,
blocks stacked, as `hf_export` hands them over) into that class's config.json values and its
tensors by name. Which writer a run gets, or why none fits, and the files are `hf_export`'s.

  writer         transformers class
  _encoder_out   BertForMaskedLM / BertForPreTraining, RobertaPreLayerNormForMaskedLM,
                 XLMRobertaXLForMaskedLM (as an `EncoderLayout` places norms and names)
  _gpt2_out      GPT2LMHeadModel
  _neox_out      GPTNeoXForCausalLM (rotary)
  _esm_out       EsmForMaskedLM (rotary)
"""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from jaxlm.config import Config
from jaxlm.data import tokenizer as jaxlm_tokenizer
from jaxlm.interop.hf_layouts import (
  ACTIVATION_TO_HF,
  ENCODER_LINEAR,
  ESM,
  GPT2_PLAIN,
  NEOX_ARCH,
  NEOX_LINEAR,
  NEOX_PLAIN,
  NSP_ARCH,
  QKV,
  TYPES,
  EncoderLayout,
)


def _max_positions(config: Config) -> int:
  """The longest input the exported model is known to take: the learned table's rows, or for
  RoPE (no table) the longer of that and the training length."""
  m = config.model
  return m.max_seq_len if m.position == "learned" else max(m.max_seq_len, config.seq_len)


def _special_ids(tokenizer: Tokenizer | None) -> dict[str, int | None]:
  if tokenizer is None:
    return {}
  return {name: tokenizer.token_to_id(name) for name in jaxlm_tokenizer.SPECIALS}


def _layer(p: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
  """Layer i's weights by their name inside a block ('attn.query.kernel', ...)."""
  prefix = "backbone.blocks."
  return {k[len(prefix):]: v[i] for k, v in p.items() if k.startswith(prefix)}


def _encoder_layers(p: dict[str, np.ndarray], L: int, D: int, prefix: str,
                    plain) -> dict[str, np.ndarray]:
  """Every layer's tensors under PREFIXencoder.layer.i., by BERT's names (which the RoBERTa
  classes and ESM share); `plain`: the layout's (transformers name, jaxlm name) pairs copied
  as they are."""
  t = {}
  for i in range(L):
    q, layer = f"{prefix}encoder.layer.{i}.", _layer(p, i)
    t.update({q + hf_name: layer[ours] for hf_name, ours in plain})
    t.update({q + hf_name: layer[ours].T for hf_name, ours in ENCODER_LINEAR})
    for name in QKV:
      t[f"{q}attention.self.{name}.weight"] = _heads_out(layer[f"attn.{name}.kernel"]).T
      t[f"{q}attention.self.{name}.bias"] = layer[f"attn.{name}.bias"].reshape(-1)
    t[f"{q}attention.output.dense.weight"] = layer["attn.out.kernel"].reshape(-1, D).T
  return t


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
    **_mlm_head(p, layout),
  }
  for hf_name, ours in layout.norms:
    t[f"{b}{hf_name}.weight"], t[f"{b}{hf_name}.bias"] = p[f"{ours}.scale"], p[f"{ours}.bias"]
  t.update(_encoder_layers(p, L, D, b, layout.plain()))
  if nsp:  # BertForPreTraining: bert.pooler (dense + tanh on [CLS]), then cls.seq_relationship
    t.update({f"{b}pooler.dense.weight": p["nsp_head.pooler.kernel"].T,
              f"{b}pooler.dense.bias": p["nsp_head.pooler.bias"],
              "cls.seq_relationship.weight": p["nsp_head.classifier.kernel"].T,
              "cls.seq_relationship.bias": p["nsp_head.classifier.bias"]})
  return hf_config, t


def _mlm_head(p: dict[str, np.ndarray], layout: EncoderLayout) -> dict[str, np.ndarray]:
  """The MLM head's tensors by the layout's names; none for a classifier's backbone."""
  if "mlm_head.bias" not in p:
    return {}
  return {f"{layout.head_dense}.weight": p["mlm_head.transform.kernel"].T,
          f"{layout.head_dense}.bias": p["mlm_head.transform.bias"],
          f"{layout.head_norm}.weight": p["mlm_head.norm.scale"],
          f"{layout.head_norm}.bias": p["mlm_head.norm.bias"],
          layout.head_biases[0]: p["mlm_head.bias"]}


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


def _neox_out(config: Config, p: dict[str, np.ndarray],
              tokenizer: Tokenizer | None) -> tuple[dict, dict[str, np.ndarray]]:
  """GPTNeoXForCausalLM with rotary over the whole head and a sequential residual: jaxlm's pre-LN
  RoPE block. jaxlm's rope rotates the two halves of each head, as GPT-NeoX's rotate_half, so
  q and k keep their head-dim order."""
  m, L, D = config.model, config.model.num_layers, config.model.embed_dim
  eos = _special_ids(tokenizer).get(jaxlm_tokenizer.SEP)
  input_VxD, output_VxD = _rotary_embeddings(p)
  rope = {"rope_type": "default", "rope_theta": m.rope_theta, "partial_rotary_factor": 1.0}
  hf_config = {
    "architectures": [NEOX_ARCH], "model_type": "gpt_neox", "vocab_size": m.vocab_size,
    "hidden_size": D, "num_hidden_layers": L, "num_attention_heads": m.num_heads,
    "intermediate_size": m.mlp_dim, "hidden_act": ACTIVATION_TO_HF[m.activation],
    "max_position_embeddings": _max_positions(config), "layer_norm_eps": m.layer_norm_eps,
    "hidden_dropout": m.dropout, "attention_dropout": m.attention_dropout,
    "initializer_range": 0.02, "use_parallel_residual": False, "attention_bias": True,
    # rope_parameters for transformers 5; rotary_pct and rotary_emb_base for 4.x readers.
    "rope_parameters": rope, "rotary_pct": 1.0, "rotary_emb_base": m.rope_theta,
    "tie_word_embeddings": output_VxD is None, "use_cache": True, "bos_token_id": eos,
    "eos_token_id": eos, "dtype": "float32",
  }
  t = {"gpt_neox.embed_in.weight": input_VxD,
       "gpt_neox.final_layer_norm.weight": p["backbone.norm.scale"],
       "gpt_neox.final_layer_norm.bias": p["backbone.norm.bias"]}
  if output_VxD is not None:
    t["embed_out.weight"] = output_VxD  # transformers 5 reads it as lm_head.weight
  for i in range(L):
    q, layer = f"gpt_neox.layers.{i}.", _layer(p, i)
    t.update({q + hf_name: layer[ours] for hf_name, ours in NEOX_PLAIN})
    t.update({q + hf_name: layer[ours].T for hf_name, ours in NEOX_LINEAR})
    # query_key_value's outputs are per head [H, 3 (q|k|v), K]: GPT-NeoX views them that way.
    qkv_DxHx3xK = np.stack([layer[f"attn.{name}.kernel"] for name in QKV], axis=2)
    qkv_Hx3xK = np.stack([layer[f"attn.{name}.bias"] for name in QKV], axis=1)
    t[f"{q}attention.query_key_value.weight"] = qkv_DxHx3xK.reshape(D, -1).T
    t[f"{q}attention.query_key_value.bias"] = qkv_Hx3xK.reshape(-1)
    t[f"{q}attention.dense.weight"] = layer["attn.out.kernel"].reshape(-1, D).T
  return hf_config, t


def _esm_out(config: Config, p: dict[str, np.ndarray],
             tokenizer: Tokenizer | None) -> tuple[dict, dict[str, np.ndarray]]:
  """EsmForMaskedLM with rotary positions and no token dropout: ESM-2's pre-LN blocks, its
  rotate-half rotary over the whole head (q scaled before rotating: the same product), the
  embedding LayerNorm where jaxlm has one, the final one, and BERT's MLM head."""
  m, L, D = config.model, config.model.num_layers, config.model.embed_dim
  specials = _special_ids(tokenizer)
  input_VxD, output_VxD = _rotary_embeddings(p)
  hf_config = {
    "architectures": list(ESM.archs), "model_type": ESM.model_type, "vocab_size": m.vocab_size,
    "hidden_size": D, "num_hidden_layers": L, "num_attention_heads": m.num_heads,
    "intermediate_size": m.mlp_dim, "max_position_embeddings": _max_positions(config),
    "position_embedding_type": "rotary", "rope_theta": m.rope_theta,
    "emb_layer_norm_before": m.embed_norm, "token_dropout": False,
    "layer_norm_eps": m.layer_norm_eps, "hidden_dropout_prob": m.dropout,
    "attention_probs_dropout_prob": m.attention_dropout, "initializer_range": 0.02,
    "tie_word_embeddings": output_VxD is None, "is_decoder": False, "add_cross_attention": False,
    "pad_token_id": specials.get(jaxlm_tokenizer.PAD) or 0,
    "mask_token_id": specials.get(jaxlm_tokenizer.MASK),
    "eos_token_id": specials.get(jaxlm_tokenizer.SEP), "dtype": "float32",
  }
  b = ESM.prefix
  t = {
    b + "embeddings.word_embeddings.weight": input_VxD,
    **_mlm_head(p, ESM),
    # EsmModel always builds a contact-prediction head; zeros keep it from loading as random.
    b + "contact_head.regression.weight": np.zeros((1, L * m.num_heads), np.float32),
    b + "contact_head.regression.bias": np.zeros((1,), np.float32),
    # A saved buffer in ESM (transformers would report it missing): jaxlm's rotary frequencies.
    b + "rotary_embeddings.inv_freq": _inv_freq(m.rope_theta, m.head_dim),
  }
  if output_VxD is not None and "mlm_head.bias" in p:
    t[ESM.decoder] = output_VxD
  for hf_name, ours in ESM.norms:
    if f"{ours}.scale" in p:  # backbone.embed_norm only with model.embed_norm
      t[f"{b}{hf_name}.weight"], t[f"{b}{hf_name}.bias"] = p[f"{ours}.scale"], p[f"{ours}.bias"]
  t.update(_encoder_layers(p, L, D, b, ESM.plain()))
  return hf_config, t


def _inv_freq(theta: float, K: int) -> np.ndarray:
  """The rotary frequencies of `backbone.rope`, one per pair of head dims, in float32."""
  return (1.0 / np.float32(theta) ** (np.arange(0, K, 2, dtype=np.float32) / np.float32(K))
          ).astype(np.float32)


def _rotary_embeddings(p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
  """(input embeddings, output projection or None when tied to them) for the classes without
  token-type or position tables (GPT-NeoX, ESM). Rows of a model with token types are all type
  0 for these objectives (as `logits` reads them): that row, a constant added to every input
  embedding, then has no place but the input table, which unties it from the output."""
  embed_VxD = p["backbone.embed.embedding"]
  types_NxD = p.get("backbone.type_embed.embedding")
  if types_NxD is None:
    return embed_VxD, None
  return embed_VxD + types_NxD[0], embed_VxD
