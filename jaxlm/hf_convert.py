"""Hugging Face interchange: BERT and GPT-2 checkpoints in, BERT- and GPT-2-shaped runs out.

Only `config.json` + safetensors are read or written: a pickled `pytorch_model.bin` can run
arbitrary code when loaded, so it is refused, never opened. torch is not needed here.

Mapping (HF Linear weights are (out, in); GPT-2's Conv1D weights are already (in, out)):
  BERT (post-LN, exact GELU)           jaxlm
    embeddings.word_embeddings          backbone.embed.embedding
    embeddings.position_embeddings      backbone.pos_embed.embedding (+ token_type_embeddings[0])
    embeddings.LayerNorm                backbone.norm
    layer.i.attention.self.{q,k,v}      backbone.blocks.attn.{query,key,value} [i]
    layer.i.attention.output.dense      backbone.blocks.attn.out [i]
    layer.i.attention.output.LayerNorm  backbone.blocks.attn_norm [i]
    layer.i.{intermediate,output}.dense backbone.blocks.mlp.{fc_in,fc_out} [i]
    layer.i.output.LayerNorm            backbone.blocks.mlp_norm [i]
    cls.predictions.transform.*, .bias  mlm_head.{transform,norm}, mlm_head.bias
  GPT-2 (pre-LN, tanh GELU): wte, wpe, h.i.{ln_1, attn.c_attn (q|k|v), attn.c_proj, ln_2,
    mlp.c_fc, mlp.c_proj}, ln_f -> the same slots, ln_f being backbone.norm.
Both decoders (BERT's cls.predictions.decoder, GPT-2's lm_head) are tied to the word embeddings,
as jaxlm's are.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx
from tokenizers import Tokenizer

from jaxlm import tokenizer as jaxlm_tokenizer
from jaxlm.config import Config, DataConfig, DataError, ModelConfig

BERT_ARCHS = ("BertForMaskedLM", "BertModel", "BertForPreTraining")
GPT2_ARCHS = ("GPT2LMHeadModel", "GPT2Model")

# HF activation names -> jaxlm's. "gelu" is erf-based in both BERT and GPT-2; "gelu_new" and
# "gelu_pytorch_tanh" are the tanh approximation.
HF_TO_ACTIVATION = {"gelu": "gelu_exact", "gelu_python": "gelu_exact", "gelu_new": "gelu_tanh",
                    "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh"}
ACTIVATION_TO_HF = {"gelu_exact": "gelu", "gelu_tanh": "gelu_new"}

# Per-layer tensors that map one to one: (HF name, jaxlm name); *_LINEAR ones are transposed.
_BERT_PLAIN = (
  ("attention.output.dense.bias", "attn.out.bias"),
  ("attention.output.LayerNorm.weight", "attn_norm.scale"),
  ("attention.output.LayerNorm.bias", "attn_norm.bias"),
  ("intermediate.dense.bias", "mlp.fc_in.bias"), ("output.dense.bias", "mlp.fc_out.bias"),
  ("output.LayerNorm.weight", "mlp_norm.scale"), ("output.LayerNorm.bias", "mlp_norm.bias"))
_BERT_LINEAR = (("intermediate.dense.weight", "mlp.fc_in.kernel"),
                ("output.dense.weight", "mlp.fc_out.kernel"))
_GPT2_PLAIN = (
  ("ln_1.weight", "attn_norm.scale"), ("ln_1.bias", "attn_norm.bias"),
  ("attn.c_proj.bias", "attn.out.bias"),
  ("mlp.c_fc.weight", "mlp.fc_in.kernel"), ("mlp.c_fc.bias", "mlp.fc_in.bias"),
  ("mlp.c_proj.weight", "mlp.fc_out.kernel"), ("mlp.c_proj.bias", "mlp.fc_out.bias"),
  ("ln_2.weight", "mlp_norm.scale"), ("ln_2.bias", "mlp_norm.bias"))
_QKV = ("query", "key", "value")

# Weights an HF checkpoint may hold that jaxlm has no use for (NSP head, pooler, buffers).
_IGNORED_SUFFIXES = ("position_ids", ".attn.bias", ".attn.masked_bias")
_IGNORED_PREFIXES = ("pooler.", "cls.seq_relationship.")


# ----------------------------------------------------------------------------- reading


def from_hf(hf_dir: str | Path) -> tuple[Config, nnx.State]:
  """A Hugging Face BERT or GPT-2 directory as (jaxlm Config, parameters for scan_layers=True).

  BERT becomes an `mlm` run, GPT-2 a `clm` run. Raises DataError (one line) for pickled
  checkpoints and for architectures jaxlm cannot represent exactly.
  """
  hf_dir = Path(hf_dir)
  hf = _read_hf_config(hf_dir)
  weights = {_canonical(k): v for k, v in _read_safetensors(hf_dir).items()}
  if hf["model_type"] == "bert":
    config = _bert_config(hf, hf_dir)
    arrays = _bert_arrays(weights, config, hf_dir)
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
  supported = {"bert": BERT_ARCHS, "gpt2": GPT2_ARCHS}
  if model_type not in supported or any(a not in supported[model_type] for a in archs):
    raise DataError(f"{path}: model_type={model_type!r}, architectures={archs}; jaxlm reads "
                    f"only {', '.join(BERT_ARCHS + GPT2_ARCHS)}")
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
  for prefix in ("bert.", "transformer."):
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
                  data=DataConfig(tokenizer=tok))
  finetune = getattr(config, "finetune", None)
  if finetune is not None:
    finetune.max_seq_len = min(finetune.max_seq_len, model_cfg.max_seq_len)
  return config.validate()


def _bert_config(hf: dict[str, Any], hf_dir: Path) -> Config:
  _refuse_if(hf, hf_dir, {"position_embedding_type": "absolute", "is_decoder": False,
                          "add_cross_attention": False, "tie_word_embeddings": True})
  D = hf["hidden_size"]
  return _make_config(
    "mlm", hf_dir, vocab_size=hf["vocab_size"], max_seq_len=hf["max_position_embeddings"],
    embed_dim=D, num_heads=hf["num_attention_heads"], num_layers=hf["num_hidden_layers"],
    mlp_dim=hf.get("intermediate_size", 4 * D), norm="post",
    layer_norm_eps=hf.get("layer_norm_eps", 1e-12),
    activation=_activation(hf, "hidden_act", hf_dir))


def _gpt2_config(hf: dict[str, Any], hf_dir: Path) -> Config:
  _refuse_if(hf, hf_dir, {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
                          "add_cross_attention": False, "tie_word_embeddings": True})
  D = hf["n_embd"]
  return _make_config(
    "clm", hf_dir, vocab_size=hf["vocab_size"], max_seq_len=hf["n_positions"], embed_dim=D,
    num_heads=hf["n_head"], num_layers=hf["n_layer"], mlp_dim=hf.get("n_inner") or 4 * D,
    norm="pre", layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
    activation=_activation(hf, "activation_function", hf_dir))


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


def _bert_arrays(raw: dict[str, np.ndarray], config: Config, hf_dir: Path) -> dict[str, np.ndarray]:
  m, w = config.model, _Weights(raw, hf_dir)
  H, K = m.num_heads, m.head_dim
  embed_VxD = w("embeddings.word_embeddings.weight")
  pos_PxD = w("embeddings.position_embeddings.weight")
  if "embeddings.token_type_embeddings.weight" in w:
    # jaxlm has no token types: every input is type 0, whose embedding is a constant per position.
    pos_PxD = pos_PxD + w("embeddings.token_type_embeddings.weight")[0]
  arrays = {"backbone.embed.embedding": embed_VxD, "backbone.pos_embed.embedding": pos_PxD,
            "backbone.norm.scale": w("embeddings.LayerNorm.weight"),
            "backbone.norm.bias": w("embeddings.LayerNorm.bias")}
  layers = []
  for i in range(m.num_layers):
    p = f"encoder.layer.{i}."
    layer = {ours: w(p + hf_name) for hf_name, ours in _BERT_PLAIN}
    layer.update({ours: w(p + hf_name).T for hf_name, ours in _BERT_LINEAR})
    for name in _QKV:
      layer[f"attn.{name}.kernel"] = _heads_in(w(f"{p}attention.self.{name}.weight").T, m)
      layer[f"attn.{name}.bias"] = w(f"{p}attention.self.{name}.bias").reshape(H, K)
    layer["attn.out.kernel"] = w(f"{p}attention.output.dense.weight").T.reshape(H, K, m.embed_dim)
    layers.append(layer)
  arrays.update(_stack(layers))
  if "cls.predictions.transform.dense.weight" in w:
    arrays.update({
      "mlm_head.transform.kernel": w("cls.predictions.transform.dense.weight").T,
      "mlm_head.transform.bias": w("cls.predictions.transform.dense.bias"),
      "mlm_head.norm.scale": w("cls.predictions.transform.LayerNorm.weight"),
      "mlm_head.norm.bias": w("cls.predictions.transform.LayerNorm.bias"),
    })
    # The decoder bias is one parameter stored under one or both names.
    bias_names = [n for n in ("cls.predictions.bias", "cls.predictions.decoder.bias") if n in w]
    arrays["mlm_head.bias"] = (w(bias_names[0]) if bias_names
                               else np.zeros((m.vocab_size,), np.float32))
    for name in bias_names[1:]:
      w(name)
    w.check_tied("cls.predictions.decoder.weight", embed_VxD)
  else:
    # BertModel ships no MLM head: start one as jaxlm would, so the model can train on.
    warnings.warn(f"{hf_dir}: no MLM head (cls.predictions.*) in the checkpoint; it is freshly "
                  "initialised, so MLM logits are meaningless until trained", stacklevel=3)
    rng = np.random.default_rng(0)
    arrays.update({
      "mlm_head.transform.kernel": rng.normal(0, 0.02, (m.embed_dim, m.embed_dim)),
      "mlm_head.transform.bias": np.zeros(m.embed_dim), "mlm_head.norm.scale": np.ones(m.embed_dim),
      "mlm_head.norm.bias": np.zeros(m.embed_dim), "mlm_head.bias": np.zeros(m.vocab_size)})
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
    layer = {ours: w(p + hf_name) for hf_name, ours in _GPT2_PLAIN}
    # c_attn packs q, k, v side by side along its output axis.
    qkv_Dx3D, qkv_bias_3D = w(f"{p}attn.c_attn.weight"), w(f"{p}attn.c_attn.bias")
    for j, name in enumerate(_QKV):
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
  from jaxlm.train_state import abstract_model  # noqa: PLC0415 - pulls in the model

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


# ----------------------------------------------------------------------------- writing


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
  if config.objective == "mlm" and m.norm == "post":
    hf_config, tensors = _bert_out(config, _flat_stacked(config, params), tokenizer)
  elif config.objective == "clm" and m.norm == "pre":
    hf_config, tensors = _gpt2_out(config, _flat_stacked(config, params), tokenizer)
  elif config.objective == "prefix_lm":
    raise DataError("to_hf: objective=prefix_lm; no transformers architecture has prefix-LM "
                    "attention")
  else:
    arch = "BERT (mlm) is post-LN" if config.objective == "mlm" else "GPT-2 (clm) is pre-LN"
    raise DataError(f"to_hf: objective={config.objective} with model.norm={m.norm}; {arch}")
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
    "hidden_dropout_prob": m.dropout, "attention_probs_dropout_prob": 0.0,
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
    t.update({q + hf_name: layer[ours] for hf_name, ours in _BERT_PLAIN})
    t.update({q + hf_name: layer[ours].T for hf_name, ours in _BERT_LINEAR})
    for name in _QKV:
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
    "attn_pdrop": 0.0, "initializer_range": 0.02, "scale_attn_weights": True,
    "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
    "tie_word_embeddings": True, "bos_token_id": eos, "eos_token_id": eos, "dtype": "float32",
  }
  t = {"transformer.wte.weight": p["backbone.embed.embedding"],
       "transformer.wpe.weight": p["backbone.pos_embed.embedding"],
       "transformer.ln_f.weight": p["backbone.norm.scale"],
       "transformer.ln_f.bias": p["backbone.norm.bias"]}
  for i in range(L):
    q, layer = f"transformer.h.{i}.", _layer(p, i)
    t.update({q + hf_name: layer[ours] for hf_name, ours in _GPT2_PLAIN})
    t[f"{q}attn.c_attn.weight"] = np.concatenate(
      [_heads_out(layer[f"attn.{name}.kernel"]) for name in _QKV], axis=1)
    t[f"{q}attn.c_attn.bias"] = np.concatenate(
      [layer[f"attn.{name}.bias"].reshape(-1) for name in _QKV])
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

