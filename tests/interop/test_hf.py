"""Hugging Face interchange and the inference API: tiny random BERT and GPT-2 models built in
torch must give jaxlm the same logits, survive a round trip through to_hf, and jaxlm-trained
shapes must load in transformers unchanged. What no transformers class represents is refused in
one line; pickled checkpoints are refused without being opened. Token types, the next-sentence
head and the pre-LN RoBERTa family: test_hf_encoders.py."""

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
from helpers.hf import (  # noqa: F401,F811 - pytest fixtures, by name
  TEXTS,
  TOL,
  V,
  hf_bert,
  hf_gpt2,
  max_diff,
  perturb_jaxlm,
  random_ids,
  tiny_config,
  torch_logits,
)

from jaxlm import api, objectives, sharding
from jaxlm.config import DataError, MeshConfig, replace_at
from jaxlm.data.tokenizer import tokenizer_hash, train_tokenizer
from jaxlm.interop import hf_export
from jaxlm.interop import hf_import as hf_convert
from jaxlm.objectives.build import build_model
from jaxlm.train.checkpoint import Checkpointer, run_metadata
from jaxlm.train.optim import make_optimizer
from jaxlm.train.state import create_train_state


@pytest.mark.parametrize("which", ["bert", "gpt2"])
def test_hf_logits_match_and_round_trip(which, hf_bert, hf_gpt2, tmp_path):
  hf_dir, hf_model = hf_bert if which == "bert" else hf_gpt2
  loaded = api.load(hf_dir)
  m = loaded.config.model
  assert loaded.config.objective == ("mlm" if which == "bert" else "clm")
  assert (m.norm, m.activation) == (("post", "gelu_exact") if which == "bert"
                                    else ("pre", "gelu_tanh"))
  ids = random_ids()
  expected = torch_logits(hf_model, ids)
  assert max_diff(loaded.logits(ids), expected) < TOL

  # jaxlm -> HF: transformers reads it back with the same logits, and so does jaxlm.
  hf_export.to_hf(loaded.config, loaded.params, tmp_path / "out")
  auto = (transformers.AutoModelForMaskedLM if which == "bert"
          else transformers.AutoModelForCausalLM)
  again = auto.from_pretrained(tmp_path / "out").eval()
  assert type(again) is type(hf_model)
  assert max_diff(torch_logits(again, ids), expected) < TOL
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
  perturb_jaxlm(model, seed)
  loaded = api.Pretrained(model=model, tokenizer=tok, config=config)
  hf_export.to_hf(config, loaded.params, tmp_path, tokenizer=tok)
  hf_cfg = json.loads((tmp_path / "config.json").read_text())
  assert hf_cfg["vocab_size"] == config.model.vocab_size  # padded; transformers accepts it
  auto = (transformers.AutoModelForMaskedLM if not objectives.get(config.objective).generates
          else transformers.AutoModelForCausalLM)
  hf_model = auto.from_pretrained(tmp_path).eval()
  real_vocab = tok.get_vocab_size()
  ids = random_ids(T=16, vocab=real_vocab, seed=seed)
  assert max_diff(torch_logits(hf_model, ids)[..., :real_vocab],
                   loaded.logits(ids)[..., :real_vocab]) < TOL
  # The exported tokenizer is usable as is through AutoTokenizer.
  hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
  assert hf_tok(TEXTS[0], add_special_tokens=False)["input_ids"] == tok.encode(TEXTS[0]).ids
  assert hf_tok.mask_token == "[MASK]" and hf_tok.pad_token_id == tok.token_to_id("[PAD]")


@pytest.mark.parametrize("objective", ["mlm", "mdlm"])  # MDLM: BERT's shape, the same head
def test_export_jaxlm_bert(objective, tmp_path):
  config = tiny_config(objective, norm="post", activation="gelu_exact", layer_norm_eps=1e-12)
  _export_and_compare(config, train_tokenizer("wordpiece", TEXTS, 200), tmp_path, seed=3)


def test_export_jaxlm_gpt2_unscanned(tmp_path):
  # A token-type table too: clm rows are all type 0, whose row GPT-2 keeps folded into wpe.
  config = tiny_config("clm", norm="pre", scan_layers=False, vocab_size=384, type_vocab_size=2)
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
  # RoPE (GPT-NeoX, ESM) and its refusals: test_hf_rotary.py.
  ("mlm", {"norm": "post", "position": "sinusoidal"}, "learned absolute or rotary positions"),
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


