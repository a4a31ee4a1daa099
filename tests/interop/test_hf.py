"""Hugging Face interchange and the inference API: tiny random BERT (BertForMaskedLM,
BertForPreTraining), RoBERTa-PreLayerNorm, XLM-R XL and GPT-2 models built in torch must give jaxlm
the same logits (MLM, next-sentence, with and without token types), survive a round trip through
to_hf, and jaxlm-trained shapes must load in transformers unchanged. What no transformers class
represents is refused in one line; pickled checkpoints are refused without being opened."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import grain
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx

from jaxlm import api, sharding
from jaxlm.interop import hf_import as hf_convert
from jaxlm.interop import hf_export
from jaxlm.train.checkpoint import Checkpointer, run_metadata
from jaxlm.config import Config, DataError, MeshConfig, ModelConfig, replace_at
from jaxlm.train.optim import make_optimizer
from jaxlm.data.tokenizer import tokenizer_hash, train_tokenizer
from jaxlm.model.masks import MaskSpec
from jaxlm.train.state import build_model, create_train_state

TOL = 1e-4
V, D, L, H, P = 99, 32, 2, 4, 64  # vocab, hidden, layers, heads, max positions
TEXTS = ["the cat sat on the mat", "a dog ran in the park", "the bird sang on a tree"] * 20


def tiny_config(objective: str, **model) -> Config:
  shape = dict(vocab_size=256, max_seq_len=128, embed_dim=32, num_heads=4, num_layers=2,
               mlp_dim=64)
  return Config(objective=objective, seq_len=16, batch_size=8, steps=10,
                model=ModelConfig(**{**shape, **model})).validate()


def _perturb_torch(model: torch.nn.Module, seed: int) -> torch.nn.Module:
  """Fresh HF models have zero biases and unit norms, which would hide mapping mistakes."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.05 * torch.randn(p.shape, generator=gen))
  return model.eval()


def _perturb_jaxlm(model: nnx.Module, seed: int) -> None:
  rng = np.random.default_rng(seed)
  params = nnx.state(model, nnx.Param)
  nnx.update(model, jax.tree.map(lambda x: x + 0.05 * rng.standard_normal(x.shape, np.float32),
                                 params))


def _ids(B: int = 3, T: int = 17, vocab: int = V, seed: int = 0, low: int = 0) -> np.ndarray:
  """Random ids in [low, vocab); RoBERTa tests start above the pad id, whose tokens RoBERTa
  gives the pad position row."""
  return np.random.default_rng(seed).integers(low, vocab, (B, T)).astype(np.int64)


def _types(B: int = 3, T: int = 17, seed: int = 0) -> np.ndarray:
  """Sentence-pair token types: 0 up to a per-row split, 1 after it (as [CLS] A [SEP] B [SEP])."""
  split_B = np.random.default_rng(seed).integers(2, T - 1, (B,))
  return (np.arange(T)[None, :] >= split_B[:, None]).astype(np.int64)


def _torch_logits(model: torch.nn.Module, ids: np.ndarray) -> np.ndarray:
  ids_t = torch.from_numpy(ids)
  kwargs = {"attention_mask": torch.ones_like(ids_t)}
  if isinstance(model, transformers.BertPreTrainedModel):
    kwargs["token_type_ids"] = torch.zeros_like(ids_t)  # type 0, as jaxlm's logits() reads all
  with torch.no_grad():
    return model(input_ids=ids_t, **kwargs).logits.float().numpy()


def _torch_outputs(model: torch.nn.Module, ids: np.ndarray,
                   types: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
  """(MLM logits, NSP logits or None) of a transformers masked LM or BertForPreTraining, with
  `types` as token_type_ids (None: not passed, so transformers' own all-zero default)."""
  ids_t = torch.from_numpy(ids)
  kwargs = {"attention_mask": torch.ones_like(ids_t)}
  if types is not None:
    kwargs["token_type_ids"] = torch.from_numpy(types)
  with torch.no_grad():
    out = model(input_ids=ids_t, **kwargs)
  if isinstance(model, transformers.BertForPreTraining):
    return out.prediction_logits.float().numpy(), out.seq_relationship_logits.float().numpy()
  return out.logits.float().numpy(), None


def _jaxlm_outputs(loaded: api.Loaded, ids: np.ndarray,
                   types: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
  """The same from a jaxlm MLM model: hidden states with `types` as token types, then its heads."""
  model = loaded.model
  h_BxTxD = model.hidden(jnp.asarray(ids, jnp.int32), MaskSpec("bidirectional"),
                         token_types_BxT=None if types is None else jnp.asarray(types, jnp.int32))
  nsp_Bx2 = None if model.nsp_head is None else np.asarray(model.nsp_logits(h_BxTxD))
  return np.asarray(model.mlm_logits(h_BxTxD), np.float32), nsp_Bx2


def _assert_same_outputs(hf_model: torch.nn.Module, loaded: api.Loaded, ids: np.ndarray,
                         types_options: tuple[np.ndarray | None, ...], vocab: int) -> None:
  """MLM logits over the first `vocab` ids (and NSP logits) agree for every token-type input."""
  for types in types_options:
    (theirs, theirs_nsp), (ours, ours_nsp) = (_torch_outputs(hf_model, ids, types),
                                              _jaxlm_outputs(loaded, ids, types))
    assert _max_diff(ours[..., :vocab], theirs[..., :vocab]) < TOL, types
    assert (ours_nsp is None) == (theirs_nsp is None)
    if ours_nsp is not None:
      assert _max_diff(ours_nsp, theirs_nsp) < TOL, types


def _assert_same_params(a: nnx.State, b: nnx.State) -> None:
  flat_a, flat_b = nnx.to_flat_state(a), nnx.to_flat_state(b)
  assert [path for path, _ in flat_a] == [path for path, _ in flat_b]
  for (path, x), (_, y) in zip(flat_a, flat_b):
    np.testing.assert_allclose(np.asarray(x.get_value()), np.asarray(y.get_value()), atol=1e-6,
                               err_msg=str(path))


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
  assert a.shape == b.shape, (a.shape, b.shape)
  return float(np.max(np.abs(a - b)))


def _saved_bert(factory, cls, seed: int, **config) -> tuple[Path, torch.nn.Module]:
  """A tiny random transformers BERT of class `cls`, perturbed and saved as safetensors."""
  torch.manual_seed(0)
  bert = transformers.BertConfig(vocab_size=V, hidden_size=D, num_hidden_layers=L,
                                 num_attention_heads=H, intermediate_size=37,
                                 max_position_embeddings=P, **config)
  model = _perturb_torch(cls(bert), seed)
  out = factory.mktemp(cls.__name__)
  model.save_pretrained(out, safe_serialization=True)
  return out, model


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
  return _saved_bert(tmp_path_factory, transformers.BertForMaskedLM, 1)


@pytest.fixture(scope="module")
def hf_bert_pretraining(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
  """BertForPreTraining: MLM head, pooler and next-sentence head, two token types."""
  return _saved_bert(tmp_path_factory, transformers.BertForPreTraining, 5, type_vocab_size=2)


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
  torch.manual_seed(0)
  config = transformers.GPT2Config(vocab_size=V, n_embd=D, n_layer=L, n_head=H, n_positions=P,
                                   bos_token_id=0, eos_token_id=0)
  model = _perturb_torch(transformers.GPT2LMHeadModel(config), 2)
  out = tmp_path_factory.mktemp("hf_gpt2")
  model.save_pretrained(out, safe_serialization=True)
  return out, model


@pytest.mark.parametrize("which", ["bert", "gpt2"])
def test_hf_logits_match_and_round_trip(which, hf_bert, hf_gpt2, tmp_path):
  hf_dir, hf_model = hf_bert if which == "bert" else hf_gpt2
  loaded = api.load(hf_dir)
  m = loaded.config.model
  assert loaded.config.objective == ("mlm" if which == "bert" else "clm")
  assert (m.norm, m.activation) == (("post", "gelu_exact") if which == "bert"
                                    else ("pre", "gelu_tanh"))
  ids = _ids()
  expected = _torch_logits(hf_model, ids)
  assert _max_diff(loaded.logits(ids), expected) < TOL

  # jaxlm -> HF: transformers reads it back with the same logits, and so does jaxlm.
  hf_export.to_hf(loaded.config, loaded.params, tmp_path / "out")
  auto = (transformers.AutoModelForMaskedLM if which == "bert"
          else transformers.AutoModelForCausalLM)
  again = auto.from_pretrained(tmp_path / "out").eval()
  assert type(again) is type(hf_model)
  assert _max_diff(_torch_logits(again, ids), expected) < TOL
  _, params = hf_convert.from_hf(tmp_path / "out")
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_bert_token_types_load_into_type_embed(hf_bert):
  hf_dir, hf_model = hf_bert
  loaded = api.load(hf_dir)
  assert loaded.config.model.type_vocab_size == 2
  backbone, embeddings = loaded.model.backbone, hf_model.bert.embeddings
  # Loaded as they are: no longer folded into the position table.
  for ours, theirs in ((backbone.type_embed, embeddings.token_type_embeddings),
                       (backbone.pos_embed, embeddings.position_embeddings)):
    np.testing.assert_array_equal(np.asarray(ours.embedding[...]), theirs.weight.detach().numpy())
  _assert_same_outputs(hf_model, loaded, _ids(), (None, _types()), V)


def test_bert_pretraining_loads_as_mlm_nsp_and_round_trips(hf_bert_pretraining, tmp_path):
  hf_dir, hf_model = hf_bert_pretraining
  loaded = api.load(hf_dir)
  assert loaded.config.objective == "mlm_nsp"
  assert loaded.config.model.type_vocab_size == 2 and loaded.model.nsp_head is not None
  ids, types = _ids(), _types()
  _assert_same_outputs(hf_model, loaded, ids, (None, types), V)

  hf_export.to_hf(loaded.config, loaded.params, tmp_path)
  assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [
    "BertForPreTraining"]
  again = transformers.AutoModelForPreTraining.from_pretrained(tmp_path).eval()
  assert type(again) is transformers.BertForPreTraining
  _assert_same_outputs(again, loaded, ids, (None, types), V)
  config, params = hf_convert.from_hf(tmp_path)
  assert config.objective == "mlm_nsp"
  _assert_same_params(params, loaded.params)


def test_bert_model_without_head_loads_with_a_fresh_one(hf_bert, tmp_path):
  _, hf_model = hf_bert
  hf_model.bert.save_pretrained(tmp_path, safe_serialization=True)  # BertModel: pooler, no cls
  with pytest.warns(UserWarning, match="no MLM head"):
    config, params = hf_convert.from_hf(tmp_path)
  assert config.objective == "mlm"
  np.testing.assert_array_equal(np.asarray(params["mlm_head"]["bias"][...]), np.zeros(V))


def _export_and_compare(config, tok, tmp_path: Path, seed: int) -> None:
  model = build_model(config, seed)
  _perturb_jaxlm(model, seed)
  loaded = api.Loaded(model=model, tokenizer=tok, config=config)
  hf_export.to_hf(config, loaded.params, tmp_path, tokenizer=tok)
  hf_cfg = json.loads((tmp_path / "config.json").read_text())
  assert hf_cfg["vocab_size"] == config.model.vocab_size  # padded; transformers accepts it
  auto = (transformers.AutoModelForMaskedLM if config.objective == "mlm"
          else transformers.AutoModelForCausalLM)
  hf_model = auto.from_pretrained(tmp_path).eval()
  real_vocab = tok.get_vocab_size()
  ids = _ids(T=16, vocab=real_vocab, seed=seed)
  assert _max_diff(_torch_logits(hf_model, ids)[..., :real_vocab],
                   loaded.logits(ids)[..., :real_vocab]) < TOL
  # The exported tokenizer is usable as is through AutoTokenizer.
  hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
  assert hf_tok(TEXTS[0], add_special_tokens=False)["input_ids"] == tok.encode(TEXTS[0]).ids
  assert hf_tok.mask_token == "[MASK]" and hf_tok.pad_token_id == tok.token_to_id("[PAD]")


def test_export_jaxlm_bert(tmp_path):
  config = tiny_config("mlm", norm="post", activation="gelu_exact", layer_norm_eps=1e-12)
  _export_and_compare(config, train_tokenizer("wordpiece", TEXTS, 200), tmp_path, seed=3)


def test_export_jaxlm_gpt2_unscanned(tmp_path):
  # A token-type table too: clm rows are all type 0, whose row GPT-2 keeps folded into wpe.
  config = tiny_config("clm", norm="pre", scan_layers=False, vocab_size=384, type_vocab_size=2)
  tok = train_tokenizer("bpe", TEXTS, 300)
  _export_and_compare(config, tok, tmp_path, seed=4)
  assert json.loads((tmp_path / "config.json").read_text())["eos_token_id"] == tok.token_to_id(
    "[SEP]")


@pytest.mark.parametrize("objective", ["mlm", "mlm_nsp"])
def test_export_jaxlm_bert_with_token_types(objective, tmp_path):
  """Post-LN with two token types: BertForMaskedLM with the real type table, or (mlm_nsp)
  BertForPreTraining with the pooler and next-sentence head; both load back unchanged."""
  config = tiny_config(objective, norm="post", activation="gelu_exact", layer_norm_eps=1e-12,
                       type_vocab_size=2)
  tok = train_tokenizer("wordpiece", TEXTS, 200)
  model = build_model(config, 6)
  _perturb_jaxlm(model, 6)
  loaded = api.Loaded(model=model, tokenizer=tok, config=config)
  hf_export.to_hf(config, loaded.params, tmp_path, tokenizer=tok)
  cls = transformers.BertForPreTraining if objective == "mlm_nsp" else transformers.BertForMaskedLM
  assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [cls.__name__]
  auto = (transformers.AutoModelForPreTraining if objective == "mlm_nsp"
          else transformers.AutoModelForMaskedLM)
  hf_model = auto.from_pretrained(tmp_path).eval()
  assert type(hf_model) is cls
  real_vocab = tok.get_vocab_size()
  ids = _ids(T=16, vocab=real_vocab, seed=6)
  _assert_same_outputs(hf_model, loaded, ids, (None, _types(T=16, seed=6)), real_vocab)
  again = api.load(tmp_path)
  assert again.config.objective == objective and again.config.model.type_vocab_size == 2
  _assert_same_params(again.params, loaded.params)


@pytest.mark.parametrize("embed_norm, type_vocab_size, cls", [
  (True, 0, transformers.RobertaPreLayerNormForMaskedLM),
  (True, 2, transformers.RobertaPreLayerNormForMaskedLM),
  (False, 0, transformers.XLMRobertaXLForMaskedLM),
])
def test_export_jaxlm_pre_ln_mlm(embed_norm, type_vocab_size, cls, tmp_path):
  """Pre-LN MLM: with an embedding LayerNorm RoBERTa-PreLayerNorm, without one XLM-R XL (pre-LN
  blocks, one final LayerNorm, embeddings unnormalised); positions shift past the pad id."""
  config = tiny_config("mlm", norm="pre", embed_norm=embed_norm, activation="gelu_exact",
                       type_vocab_size=type_vocab_size)
  tok = train_tokenizer("wordpiece", TEXTS, 200)
  pad = tok.token_to_id("[PAD]")
  model = build_model(config, 7)
  _perturb_jaxlm(model, 7)
  loaded = api.Loaded(model=model, tokenizer=tok, config=config)
  hf_export.to_hf(config, loaded.params, tmp_path, tokenizer=tok)
  hf_cfg = json.loads((tmp_path / "config.json").read_text())
  assert hf_cfg["architectures"] == [cls.__name__] and hf_cfg["pad_token_id"] == pad
  assert hf_cfg["max_position_embeddings"] == config.model.max_seq_len + pad + 1
  assert hf_cfg["type_vocab_size"] == (type_vocab_size or 1)
  hf_model = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
  assert type(hf_model) is cls
  real_vocab = tok.get_vocab_size()
  ids = _ids(T=16, vocab=real_vocab, seed=7, low=pad + 1)
  _assert_same_outputs(hf_model, loaded, ids,
                       (None, _types(T=16, seed=7)) if type_vocab_size else (None,), real_vocab)
  # Trailing [PAD]s under an attention mask leave the real tokens' positions and logits alone.
  padded = np.concatenate([ids, np.full((ids.shape[0], 4), pad)], axis=1)
  with torch.no_grad():
    theirs = hf_model(input_ids=torch.from_numpy(padded),
                      attention_mask=torch.from_numpy((padded != pad).astype(np.int64))).logits
  assert _max_diff(theirs.numpy()[:, :16, :real_vocab], loaded.logits(ids)[..., :real_vocab]) < TOL

  again = api.load(tmp_path)
  m = again.config.model
  assert (again.config.objective, m.norm, m.embed_norm, m.type_vocab_size, m.max_seq_len) == (
    "mlm", "pre", embed_norm, type_vocab_size, config.model.max_seq_len)
  _assert_same_params(again.params, loaded.params)
  hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
  assert hf_tok(TEXTS[0], add_special_tokens=False)["input_ids"] == tok.encode(TEXTS[0]).ids


@pytest.mark.parametrize("config_cls, model_cls", [
  (transformers.RobertaPreLayerNormConfig, transformers.RobertaPreLayerNormForMaskedLM),
  (transformers.XLMRobertaXLConfig, transformers.XLMRobertaXLForMaskedLM),
])
def test_import_pre_ln_roberta_family(config_cls, model_cls, tmp_path):
  """Checkpoints built by transformers itself (pad_token_id=1, its default type tables: 2 rows
  in RoBERTa-PreLayerNorm, 1 in XLM-R XL) give jaxlm their logits."""
  torch.manual_seed(0)
  config = config_cls(vocab_size=V, hidden_size=D, num_hidden_layers=L, num_attention_heads=H,
                      intermediate_size=37, max_position_embeddings=P)
  hf_model = _perturb_torch(model_cls(config), 8)
  hf_model.save_pretrained(tmp_path, safe_serialization=True)
  loaded = api.load(tmp_path)
  m = loaded.config.model
  assert (m.norm, m.embed_norm, m.activation) == (
    "pre", model_cls is transformers.RobertaPreLayerNormForMaskedLM, "gelu_exact")
  assert (m.max_seq_len, m.type_vocab_size) == (P - 2, config.type_vocab_size)
  ids = _ids(low=2)  # above the pad id 1
  types = (None, _types()) if config.type_vocab_size > 1 else (None,)
  _assert_same_outputs(hf_model, loaded, ids, types, V)


def test_load_run_directory_and_fill_mask(tmp_path):
  config = tiny_config("mlm", norm="post", activation="gelu_exact")
  config = replace_at(config, "data.tokenizer", str(tmp_path / "gone" / "vocab.txt"))  # elsewhere
  tok = train_tokenizer("wordpiece", TEXTS, 200)
  tok.save(str(tmp_path / "tokenizer.json"))
  # Saved from another device; (re-meshing restores are test_checkpoint's; 8 fake devices
  # would make this save alone take seconds).
  mesh = sharding.make_mesh(MeshConfig(1, 1, 1), jax.devices()[1:2])
  _, state, _ = create_train_state(config, mesh, make_optimizer(config.optimizer, config.steps))
  ckpt = Checkpointer(tmp_path, keep=1)
  data_iter = iter(grain.MapDataset.range(4).to_iter_dataset())
  ckpt.save(7, state, data_iter, run_metadata(config, tokenizer_hash(tok)))
  ckpt.close()

  loaded = api.load(tmp_path)
  assert loaded.config.objective == "mlm" and loaded.tokenizer.to_str() == tok.to_str()
  for saved, got in zip(jax.tree.leaves(state.params), jax.tree.leaves(loaded.params)):
    np.testing.assert_array_equal(np.asarray(saved), np.asarray(got))
    assert got.devices() == {jax.devices()[0]}
  top = api.fill_mask(loaded, "the [MASK] sat on the mat", top_k=3)
  assert len(top) == 3 and all(isinstance(t, str) and t for t, _ in top)
  probs = [p for _, p in top]
  assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


class _Boom:
  """Unpickling this creates `marker`: the test fails if anything unpickles the checkpoint."""

  def __init__(self, marker: str):
    self.marker = marker

  def __reduce__(self):
    return (open, (self.marker, "w"))


def test_pickled_checkpoint_is_refused_unopened(hf_bert, tmp_path, monkeypatch):
  hf_dir, _ = hf_bert
  (tmp_path / "config.json").write_text((hf_dir / "config.json").read_text())
  marker = tmp_path / "unpickled"
  (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom(str(marker))))

  def forbidden(*args, **kwargs):
    raise AssertionError("a pickled checkpoint was opened")

  for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
    monkeypatch.setattr(module, name, forbidden)
  for call in (hf_convert.from_hf, api.load):
    with pytest.raises(DataError, match="refuses pickled.*safe_serialization=True") as e:
      call(tmp_path)
    assert "\n" not in str(e.value)
  assert not marker.exists()


@pytest.mark.parametrize("objective, overrides, why", [
  ("mlm", {"norm": "post", "position": "rope"}, "learned absolute positions"),
  ("clm", {"norm": "pre", "position": "sinusoidal"}, "learned absolute positions"),
  # Pre-LN MLM exports (test_export_jaxlm_pre_ln_mlm), but RoBERTa heads apply exact GELU.
  ("mlm", {"norm": "pre"}, "XLMRobertaXLForMaskedLM's MLM head always applies exact GELU"),
  ("mlm", {"norm": "pre", "embed_norm": True}, "RobertaPreLayerNormForMaskedLM's MLM head"),
  ("mlm_nsp", {"norm": "pre", "activation": "gelu_exact", "type_vocab_size": 2},
   "no next-sentence head"),
  ("clm", {"norm": "post"}, "pre-LN"),
  ("clm", {"norm": "pre", "embed_norm": True}, "GPT-2 has no embedding LayerNorm"),
  ("prefix_lm", {"norm": "pre"}, "prefix-LM"),
])
def test_to_hf_refuses_what_transformers_cannot_represent(objective, overrides, why, tmp_path):
  config = tiny_config(objective, **overrides)
  params = nnx.state(build_model(config, 0), nnx.Param)
  with pytest.raises(DataError, match=why) as e:
    hf_export.to_hf(config, params, tmp_path)
  assert "\n" not in str(e.value)
  assert not (tmp_path / "model.safetensors").exists()


@pytest.mark.parametrize("change, match", [
  ({"activation_function": "relu"}, "activation_function='relu'"),
  ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
  ({"architectures": ["GPT2ForSequenceClassification"]}, "architectures"),
  ({"model_type": "llama"}, "model_type='llama'"),
])
def test_from_hf_refuses_unsupported_configs(change, match, hf_gpt2, tmp_path):
  hf_dir, _ = hf_gpt2
  hf = {**json.loads((hf_dir / "config.json").read_text()), **change}
  (tmp_path / "config.json").write_text(json.dumps(hf))
  (tmp_path / "model.safetensors").write_bytes((hf_dir / "model.safetensors").read_bytes())
  with pytest.raises(DataError, match=match):
    hf_convert.from_hf(tmp_path)


def _copy_with(src: Path, dst: Path, config_changes: dict, tensor_changes: dict) -> Path:
  """A copy of an HF directory with some config.json keys and tensors replaced."""
  from safetensors.numpy import load_file, save_file  # noqa: PLC0415

  dst.mkdir(exist_ok=True)
  hf = {**json.loads((src / "config.json").read_text()), **config_changes}
  (dst / "config.json").write_text(json.dumps(hf))
  tensors = {**load_file(str(src / "model.safetensors")), **tensor_changes}
  save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
  return dst


def test_from_hf_refuses_encoders_it_cannot_represent(hf_bert_pretraining, tmp_path):
  hf_dir, hf_model = hf_bert_pretraining
  one_type = hf_model.bert.embeddings.token_type_embeddings.weight.detach().numpy()[:1]
  nsp_one_type = _copy_with(hf_dir, tmp_path / "nsp", {"type_vocab_size": 1},
                            {"bert.embeddings.token_type_embeddings.weight": one_type})
  torch.manual_seed(0)
  roberta = transformers.RobertaPreLayerNormForMaskedLM(transformers.RobertaPreLayerNormConfig(
    vocab_size=V, hidden_size=D, num_hidden_layers=1, num_attention_heads=H,
    intermediate_size=37, max_position_embeddings=P))
  roberta.save_pretrained(tmp_path / "roberta", safe_serialization=True)
  tanh_head = _copy_with(tmp_path / "roberta", tmp_path / "tanh", {"hidden_act": "gelu_new"}, {})
  no_positions = _copy_with(tmp_path / "roberta", tmp_path / "short",
                            {"max_position_embeddings": 2}, {})
  for where, match in ((nsp_one_type, "next-sentence head.*type_vocab_size=1"),
                       (tanh_head, "hidden_act='gelu_new'.*exact GELU"),
                       (no_positions, "max_position_embeddings=2 leaves no positions")):
    with pytest.raises(DataError, match=match) as e:
      hf_convert.from_hf(where)
    assert "\n" not in str(e.value)
