"""Hugging Face interchange and the inference API: tiny random BERT / GPT-2 models built in torch
must give jaxlm the same logits, survive a round trip through to_hf, and jaxlm-trained shapes must
load in transformers unchanged. Pickled checkpoints are refused without being opened."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import grain
import jax
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


def _ids(B: int = 3, T: int = 17, vocab: int = V, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, vocab, (B, T)).astype(np.int64)


def _torch_logits(model: torch.nn.Module, ids: np.ndarray) -> np.ndarray:
  ids_t = torch.from_numpy(ids)
  kwargs = {"attention_mask": torch.ones_like(ids_t)}
  if isinstance(model, transformers.BertPreTrainedModel):
    kwargs["token_type_ids"] = torch.zeros_like(ids_t)  # what jaxlm folds into its positions
  with torch.no_grad():
    return model(input_ids=ids_t, **kwargs).logits.float().numpy()


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
  assert a.shape == b.shape, (a.shape, b.shape)
  return float(np.max(np.abs(a - b)))


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
  torch.manual_seed(0)
  config = transformers.BertConfig(vocab_size=V, hidden_size=D, num_hidden_layers=L,
                                   num_attention_heads=H, intermediate_size=37,
                                   max_position_embeddings=P)
  model = _perturb_torch(transformers.BertForMaskedLM(config), 1)
  out = tmp_path_factory.mktemp("hf_bert")
  model.save_pretrained(out, safe_serialization=True)
  return out, model


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
  config = tiny_config("clm", norm="pre", scan_layers=False, vocab_size=384)
  tok = train_tokenizer("bpe", TEXTS, 300)
  _export_and_compare(config, tok, tmp_path, seed=4)
  assert json.loads((tmp_path / "config.json").read_text())["eos_token_id"] == tok.token_to_id(
    "[SEP]")


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
  ("mlm", {"norm": "pre"}, "post-LN"),
  ("clm", {"norm": "post"}, "pre-LN"),
  ("prefix_lm", {"norm": "pre"}, "prefix-LM"),
])
def test_to_hf_refuses_what_transformers_cannot_represent(objective, overrides, why, tmp_path):
  config = tiny_config(objective, **overrides)
  params = nnx.state(build_model(config, 0), nnx.Param)
  with pytest.raises(DataError, match=why):
    hf_export.to_hf(config, params, tmp_path)
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
