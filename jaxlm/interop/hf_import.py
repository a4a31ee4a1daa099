"""Hugging Face import: BERT-family and GPT-2 checkpoints in (export: `hf_export`).

Only `config.json` + safetensors are read or written: a pickled `pytorch_model.bin` can run
arbitrary code when loaded, so it is refused, never opened. torch is not needed here.

Which transformers class is which jaxlm run (each is exact: the same logits, tested):
  BertForMaskedLM, BertModel       mlm, post-LN (Devlin et al. 2019)
  BertForPreTraining               mlm_nsp: MLM + next-sentence head, post-LN
  RobertaPreLayerNormForMaskedLM   mlm, pre-LN with model.embed_norm (fairseq's RoBERTa with
                                   --encoder-normalize-before, Ott et al. 2019)
  XLMRobertaXLForMaskedLM          mlm, pre-LN without an embedding LayerNorm (XLM-R XL, Goyal et
                                   al. 2021: embeddings unnormalised, one final LayerNorm)
  GPT2LMHeadModel, GPT2Model       clm, pre-LN (Radford et al. 2019)

Where each family keeps each parameter: `hf_layouts.py`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from jaxlm.config import Config, DataConfig, DataError, ModelConfig
from jaxlm.interop.hf_layouts import (
  ENCODER_LINEAR,
  ENCODERS,
  GPT2_ARCHS,
  GPT2_PLAIN,
  HF_TO_ACTIVATION,
  QKV,
  TYPES,
  EncoderLayout,
)
from jaxlm.objectives.build import abstract_model

# Weights an HF checkpoint may hold that jaxlm has no use for: buffers, and the pooler of a
# BertModel / RobertaPreLayerNormModel (it feeds only the next-sentence head, loaded with it).
_IGNORED_SUFFIXES = ("position_ids", "token_type_ids", ".attn.bias", ".attn.masked_bias")
_IGNORED_PREFIXES = ("pooler.",)


# ----------------------------------------------------------------------------- reading


def from_hf(hf_dir: str | Path) -> tuple[Config, nnx.State]:
  """A Hugging Face BERT-family or GPT-2 directory as (jaxlm Config, parameters for
  scan_layers=True).

  BERT, RoBERTa-PreLayerNorm and XLM-R XL become `mlm` runs (`mlm_nsp` when the checkpoint holds
  BertForPreTraining's next-sentence head), GPT-2 a `clm` run. Raises DataError (one line) for
  pickled checkpoints and for architectures jaxlm cannot represent exactly.
  """
  hf_dir = Path(hf_dir)
  hf = _read_hf_config(hf_dir)
  weights = {_canonical(k): v for k, v in _read_safetensors(hf_dir).items()}
  if hf["model_type"] in ENCODERS:
    layout = ENCODERS[hf["model_type"]]
    offset = _position_offset(hf, layout, hf_dir)
    config = _encoder_config(hf, hf_dir, layout, weights, offset)
    arrays = _encoder_arrays(weights, config, layout, offset, hf_dir)
  else:
    config = _gpt2_config(hf, hf_dir)
    arrays = _gpt2_arrays(weights, config, hf_dir)
  return config, _to_state(config, arrays, hf_dir)


def _read_hf_config(hf_dir: Path) -> dict[str, Any]:
  path = hf_dir / "config.json"
  if not path.is_file():
    raise DataError(f"{hf_dir}: no config.json; expected a Hugging Face model directory")
  hf = json.loads(path.read_text())
  model_type = hf.get("model_type")
  archs = hf.get("architectures") or []
  supported = {**{t: layout.archs for t, layout in ENCODERS.items()}, "gpt2": GPT2_ARCHS}
  if model_type not in supported or any(a not in supported[model_type] for a in archs):
    every = [a for names in supported.values() for a in names]
    raise DataError(f"{path}: model_type={model_type!r}, architectures={archs}; jaxlm reads "
                    f"only {', '.join(every)}")
  return hf


def _read_safetensors(hf_dir: Path) -> dict[str, np.ndarray]:
  from safetensors.numpy import load_file  # noqa: PLC0415 - only conversions need it

  single, index = hf_dir / "model.safetensors", hf_dir / "model.safetensors.index.json"
  if single.is_file():
    files = [single]
  elif index.is_file():  # sharded: the index maps each tensor to its shard
    files = [hf_dir / name for name in sorted(set(json.loads(index.read_text())["weight_map"]
                                                  .values()))]
  elif any((hf_dir / name).exists() for name in ("pytorch_model.bin",
                                                  "pytorch_model.bin.index.json")):
    raise DataError(f"{hf_dir}: holds only pytorch_model.bin; jaxlm refuses pickled checkpoints "
                    "(loading one can run arbitrary code). Convert it in transformers with "
                    "model.save_pretrained(out_dir, safe_serialization=True)")
  else:
    raise DataError(f"{hf_dir}: no model.safetensors")
  weights: dict[str, np.ndarray] = {}
  for f in files:
    weights.update(load_file(str(f)))
  return weights


def _canonical(name: str) -> str:
  """Strips the task wrapper's prefix and renames TF-era LayerNorm gamma/beta."""
  for prefix in ("bert.", "transformer.", "roberta_prelayernorm.", "roberta."):
    if name.startswith(prefix):
      name = name[len(prefix):]
  return name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta",
                                                                     "LayerNorm.bias")


def _activation(hf: dict[str, Any], key: str, hf_dir: Path) -> str:
  name = hf.get(key, "gelu")
  if name not in HF_TO_ACTIVATION:
    raise DataError(f"{hf_dir}/config.json: {key}={name!r}; jaxlm supports "
                    f"{', '.join(HF_TO_ACTIVATION)}")
  return HF_TO_ACTIVATION[name]


def _refuse_if(hf: dict[str, Any], hf_dir: Path, checks: dict[str, Any]) -> None:
  """DataError when any `key` in config.json is set to something but its `default`."""
  for key, default in checks.items():
    if hf.get(key, default) != default:
      raise DataError(f"{hf_dir}/config.json: {key}={hf[key]!r} is not supported by jaxlm "
                      f"(needs {default!r})")


def _make_config(objective: str, hf_dir: Path, **model: Any) -> Config:
  model_cfg = ModelConfig(position="learned", dtype="float32", param_dtype="float32", **model)
  if model_cfg.embed_dim % model_cfg.num_heads:
    raise DataError(f"{hf_dir}/config.json: {model_cfg.num_heads} heads do not divide the hidden "
                    f"size {model_cfg.embed_dim}")
  tok = next((str(hf_dir / n) for n in ("tokenizer.json", "vocab.txt", "vocab.json")
              if (hf_dir / n).is_file()), "bpe")
  # Sequence lengths must fit the position table; the rest of Config keeps its defaults.
  config = Config(objective=objective, seq_len=min(128, model_cfg.max_seq_len), model=model_cfg,
                  data=DataConfig(tokenizer=tok, doc_start="none"))
  finetune = getattr(config, "finetune", None)
  if finetune is not None:
    finetune.max_seq_len = min(finetune.max_seq_len, model_cfg.max_seq_len)
  return config.validate()


def _position_offset(hf: dict[str, Any], layout: EncoderLayout, hf_dir: Path) -> int:
  """Rows of the HF position table before jaxlm's position 0: RoBERTa numbers real tokens from
  pad_token_id + 1 (`create_position_ids_from_input_ids`); BERT from 0."""
  if not layout.position_offset:
    return 0
  pad = hf.get("pad_token_id", 1)  # the RoBERTa config classes' default
  if not isinstance(pad, int) or pad < 0:
    raise DataError(f"{hf_dir}/config.json: pad_token_id={pad!r}; {layout.archs[0]} numbers "
                    "positions from pad_token_id + 1, so it needs an id >= 0")
  return pad + 1


def _type_vocab_size(weights: dict[str, np.ndarray], nsp: bool) -> int:
  """Rows of the token-type table; 0 for none, or for a table of zeros (what jaxlm writes for a
  model without token types, which keeps a round trip exact) unless NSP needs the types."""
  types_NxD = weights.get(TYPES)
  if types_NxD is None or (not nsp and not np.any(types_NxD)):
    return 0
  return types_NxD.shape[0]


def _encoder_config(hf: dict[str, Any], hf_dir: Path, layout: EncoderLayout,
                    weights: dict[str, np.ndarray], offset: int) -> Config:
  _refuse_if(hf, hf_dir, {"position_embedding_type": "absolute", "is_decoder": False,
                          "add_cross_attention": False, "tie_word_embeddings": True})
  activation = _activation(hf, "hidden_act", hf_dir)
  if layout.head_activation not in (None, activation):
    raise DataError(f"{hf_dir}/config.json: hidden_act={hf['hidden_act']!r}; {layout.archs[0]}'s "
                    "MLM head applies exact GELU whatever hidden_act says, jaxlm's head the "
                    "model's activation, so only hidden_act='gelu' maps exactly")
  nsp = "cls.seq_relationship.weight" in weights
  types = _type_vocab_size(weights, nsp)
  if nsp and types < 2:
    raise DataError(f"{hf_dir}: a next-sentence head (cls.seq_relationship) with "
                    f"type_vocab_size={types}; jaxlm's mlm_nsp needs 2 token types")
  max_len = hf["max_position_embeddings"] - offset
  if max_len < 1:
    raise DataError(f"{hf_dir}/config.json: max_position_embeddings="
                    f"{hf['max_position_embeddings']} leaves no positions after the "
                    f"pad_token_id + 1 that {layout.archs[0]} starts at")
  D = hf["hidden_size"]
  return _make_config(
    "mlm_nsp" if nsp else "mlm", hf_dir, vocab_size=hf["vocab_size"], max_seq_len=max_len,
    embed_dim=D, num_heads=hf["num_attention_heads"], num_layers=hf["num_hidden_layers"],
    mlp_dim=hf.get("intermediate_size", 4 * D), norm=layout.norm, embed_norm=layout.embed_norm,
    type_vocab_size=types, layer_norm_eps=hf.get("layer_norm_eps", 1e-12), activation=activation,
    # Fine-tuning drops as the checkpoint's authors did (BERT: 0.1 and 0.1).
    dropout=hf.get("hidden_dropout_prob", 0.1),
    attention_dropout=hf.get("attention_probs_dropout_prob", 0.1))


def _gpt2_config(hf: dict[str, Any], hf_dir: Path) -> Config:
  _refuse_if(hf, hf_dir, {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
                          "add_cross_attention": False, "tie_word_embeddings": True})
  D = hf["n_embd"]
  return _make_config(
    "clm", hf_dir, vocab_size=hf["vocab_size"], max_seq_len=hf["n_positions"], embed_dim=D,
    num_heads=hf["n_head"], num_layers=hf["n_layer"], mlp_dim=hf.get("n_inner") or 4 * D,
    norm="pre", layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
    activation=_activation(hf, "activation_function", hf_dir),
    dropout=hf.get("resid_pdrop", 0.1), attention_dropout=hf.get("attn_pdrop", 0.1))


class _Weights:
  """The checkpoint's tensors by canonical name; records which were used, to catch the rest."""

  def __init__(self, weights: dict[str, np.ndarray], hf_dir: Path):
    self.weights, self.hf_dir, self.used = weights, hf_dir, set()

  def __contains__(self, name: str) -> bool:
    return name in self.weights

  def __call__(self, name: str) -> np.ndarray:
    if name not in self.weights:
      raise DataError(f"{self.hf_dir}: the checkpoint lacks {name}")
    self.used.add(name)
    return np.asarray(self.weights[name], np.float32)  # fp16 / bf16 checkpoints become fp32

  def check_tied(self, name: str, embedding_VxD: np.ndarray) -> None:
    """A stored decoder must be the embedding itself: jaxlm's output layer is tied."""
    if name in self.weights:
      if not np.array_equal(self(name), embedding_VxD):
        raise DataError(f"{self.hf_dir}: {name} differs from the word embeddings; jaxlm supports "
                        "only tied output embeddings")

  def check_all_used(self) -> None:
    left = sorted(k for k in self.weights if k not in self.used
                  and not k.endswith(_IGNORED_SUFFIXES) and not k.startswith(_IGNORED_PREFIXES))
    if left:
      raise DataError(f"{self.hf_dir}: {len(left)} weights jaxlm cannot map, e.g. {left[0]}")


def _heads_in(w_DxHK: np.ndarray, m: ModelConfig) -> np.ndarray:
  return w_DxHK.reshape(m.embed_dim, m.num_heads, m.head_dim)


def _encoder_arrays(raw: dict[str, np.ndarray], config: Config, layout: EncoderLayout,
                    offset: int, hf_dir: Path) -> dict[str, np.ndarray]:
  m, w = config.model, _Weights(raw, hf_dir)
  H, K = m.num_heads, m.head_dim
  embed_VxD = w("embeddings.word_embeddings.weight")
  arrays = {"backbone.embed.embedding": embed_VxD,
            # RoBERTa's rows up to pad_token_id serve only [PAD] tokens; jaxlm has no such row.
            "backbone.pos_embed.embedding": w("embeddings.position_embeddings.weight")[offset:]}
  if TYPES in w:
    types_NxD = w(TYPES)
    if m.type_vocab_size:  # else all zeros: adds nothing
      arrays["backbone.type_embed.embedding"] = types_NxD
  for hf_name, ours in layout.norms:
    arrays[f"{ours}.scale"], arrays[f"{ours}.bias"] = w(f"{hf_name}.weight"), w(f"{hf_name}.bias")
  layers = []
  for i in range(m.num_layers):
    p = f"encoder.layer.{i}."
    layer = {ours: w(p + hf_name) for hf_name, ours in layout.plain()}
    layer.update({ours: w(p + hf_name).T for hf_name, ours in ENCODER_LINEAR})
    for name in QKV:
      layer[f"attn.{name}.kernel"] = _heads_in(w(f"{p}attention.self.{name}.weight").T, m)
      layer[f"attn.{name}.bias"] = w(f"{p}attention.self.{name}.bias").reshape(H, K)
    layer["attn.out.kernel"] = w(f"{p}attention.output.dense.weight").T.reshape(H, K, m.embed_dim)
    layers.append(layer)
  arrays.update(_stack(layers))
  if f"{layout.head_dense}.weight" in w:
    arrays.update({
      "mlm_head.transform.kernel": w(f"{layout.head_dense}.weight").T,
      "mlm_head.transform.bias": w(f"{layout.head_dense}.bias"),
      "mlm_head.norm.scale": w(f"{layout.head_norm}.weight"),
      "mlm_head.norm.bias": w(f"{layout.head_norm}.bias"),
    })
    # The decoder bias is one parameter stored under one or both names.
    bias_names = [n for n in layout.head_biases if n in w]
    arrays["mlm_head.bias"] = (w(bias_names[0]) if bias_names
                               else np.zeros((m.vocab_size,), np.float32))
    for name in bias_names[1:]:
      w(name)
    w.check_tied(layout.decoder, embed_VxD)
  else:
    # A base model (BertModel, ...) ships no MLM head: start one as jaxlm would, to train on.
    warnings.warn(f"{hf_dir}: no MLM head ({layout.head_dense}) in the checkpoint; it is freshly "
                  "initialised, so MLM logits are meaningless until trained", stacklevel=3)
    rng = np.random.default_rng(0)
    arrays.update({
      "mlm_head.transform.kernel": rng.normal(0, 0.02, (m.embed_dim, m.embed_dim)),
      "mlm_head.transform.bias": np.zeros(m.embed_dim), "mlm_head.norm.scale": np.ones(m.embed_dim),
      "mlm_head.norm.bias": np.zeros(m.embed_dim), "mlm_head.bias": np.zeros(m.vocab_size)})
  if "cls.seq_relationship.weight" in w:  # BertForPreTraining (mlm_nsp): pooler, classifier
    arrays.update({
      "nsp_head.pooler.kernel": w("pooler.dense.weight").T,
      "nsp_head.pooler.bias": w("pooler.dense.bias"),
      "nsp_head.classifier.kernel": w("cls.seq_relationship.weight").T,
      "nsp_head.classifier.bias": w("cls.seq_relationship.bias")})
  w.check_all_used()
  return arrays


def _gpt2_arrays(raw: dict[str, np.ndarray], config: Config, hf_dir: Path) -> dict[str, np.ndarray]:
  m, w = config.model, _Weights(raw, hf_dir)
  D, H, K = m.embed_dim, m.num_heads, m.head_dim
  embed_VxD = w("wte.weight")
  arrays = {"backbone.embed.embedding": embed_VxD, "backbone.pos_embed.embedding": w("wpe.weight"),
            "backbone.norm.scale": w("ln_f.weight"), "backbone.norm.bias": w("ln_f.bias")}
  layers = []
  for i in range(m.num_layers):
    p = f"h.{i}."
    layer = {ours: w(p + hf_name) for hf_name, ours in GPT2_PLAIN}
    # c_attn packs q, k, v side by side along its output axis.
    qkv_Dx3D, qkv_bias_3D = w(f"{p}attn.c_attn.weight"), w(f"{p}attn.c_attn.bias")
    for j, name in enumerate(QKV):
      layer[f"attn.{name}.kernel"] = _heads_in(qkv_Dx3D[:, j * D:(j + 1) * D], m)
      layer[f"attn.{name}.bias"] = qkv_bias_3D[j * D:(j + 1) * D].reshape(H, K)
    layer["attn.out.kernel"] = w(f"{p}attn.c_proj.weight").reshape(H, K, D)
    layers.append(layer)
  arrays.update(_stack(layers))
  w.check_tied("lm_head.weight", embed_VxD)
  w.check_all_used()
  return arrays


def _stack(layers: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Per-layer weights -> scan_layers layout: one array per slot with a leading L axis."""
  return {f"backbone.blocks.{k}": np.stack([layer[k] for layer in layers]) for k in layers[0]}


def _to_state(config: Config, arrays: dict[str, np.ndarray], where: Path) -> nnx.State:
  """Fills the model's abstract parameter tree from `arrays`, checking every name and shape."""

  _, abstract = abstract_model(config)
  flat = []
  for path, variable in nnx.to_flat_state(abstract):
    name = ".".join(map(str, path))
    value = arrays.pop(name, None)
    if value is None or value.shape != variable.shape:
      got = "missing" if value is None else f"shape {value.shape}"
      raise DataError(f"{where}: {name} is {got}, jaxlm needs {variable.shape}")
    flat.append((path, variable.replace(np.asarray(value, variable.dtype))))
  assert not arrays, f"unmapped parameters {sorted(arrays)}"  # a bug here, not in the input
  return nnx.from_flat_state(flat)
