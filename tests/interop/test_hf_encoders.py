"""BERT's token types and next-sentence head (BertForPreTraining) and the pre-LN masked LMs
(RoBERTa-PreLayerNorm, XLM-R XL) through jaxlm's import and export: the same MLM and NSP logits as
transformers with and without token_type_ids, round trips, and one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from helpers.hf import (  # noqa: F401,F811 - pytest fixtures, by name
  TEXTS,
  TOL,
  D,
  H,
  L,
  P,
  V,
  assert_same_outputs,
  assert_same_params,
  hf_bert,
  hf_bert_pretraining,
  max_diff,
  pair_types,
  perturb_jaxlm,
  perturb_torch,
  random_ids,
  tiny_config,
)

from jaxlm import api
from jaxlm.config import DataError
from jaxlm.data.tokenizer import train_tokenizer
from jaxlm.interop import hf_export
from jaxlm.interop import hf_import as hf_convert
from jaxlm.objectives.build import build_model


def test_bert_token_types_load_into_type_embed(hf_bert):
  hf_dir, hf_model = hf_bert
  loaded = api.load(hf_dir)
  assert loaded.config.model.type_vocab_size == 2
  backbone, embeddings = loaded.model.backbone, hf_model.bert.embeddings
  # Loaded as they are: no longer folded into the position table.
  for ours, theirs in ((backbone.type_embed, embeddings.token_type_embeddings),
                       (backbone.pos_embed, embeddings.position_embeddings)):
    np.testing.assert_array_equal(np.asarray(ours.embedding[...]), theirs.weight.detach().numpy())
  assert_same_outputs(hf_model, loaded, random_ids(), (None, pair_types()), V)


def test_bert_pretraining_loads_as_mlm_nsp_and_round_trips(hf_bert_pretraining, tmp_path):
  hf_dir, hf_model = hf_bert_pretraining
  loaded = api.load(hf_dir)
  assert loaded.config.objective == "mlm_nsp"
  assert loaded.config.model.type_vocab_size == 2 and loaded.model.nsp_head is not None
  ids, types = random_ids(), pair_types()
  assert_same_outputs(hf_model, loaded, ids, (None, types), V)

  hf_export.to_hf(loaded.config, loaded.params, tmp_path)
  assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [
    "BertForPreTraining"]
  again = transformers.AutoModelForPreTraining.from_pretrained(tmp_path).eval()
  assert type(again) is transformers.BertForPreTraining
  assert_same_outputs(again, loaded, ids, (None, types), V)
  config, params = hf_convert.from_hf(tmp_path)
  assert config.objective == "mlm_nsp"
  assert_same_params(params, loaded.params)


@pytest.mark.parametrize("objective", ["mlm", "mlm_nsp"])
def test_export_jaxlm_bert_with_token_types(objective, tmp_path):
  """Post-LN with two token types: BertForMaskedLM with the real type table, or (mlm_nsp)
  BertForPreTraining with the pooler and next-sentence head; both load back unchanged."""
  config = tiny_config(objective, norm="post", activation="gelu_exact", layer_norm_eps=1e-12,
                       type_vocab_size=2)
  tok = train_tokenizer("wordpiece", TEXTS, 200)
  model = build_model(config, 6)
  perturb_jaxlm(model, 6)
  loaded = api.Pretrained(model=model, tokenizer=tok, config=config)
  hf_export.to_hf(config, loaded.params, tmp_path, tokenizer=tok)
  cls = transformers.BertForPreTraining if objective == "mlm_nsp" else transformers.BertForMaskedLM
  assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [cls.__name__]
  auto = (transformers.AutoModelForPreTraining if objective == "mlm_nsp"
          else transformers.AutoModelForMaskedLM)
  hf_model = auto.from_pretrained(tmp_path).eval()
  assert type(hf_model) is cls
  real_vocab = tok.get_vocab_size()
  ids = random_ids(T=16, vocab=real_vocab, seed=6)
  assert_same_outputs(hf_model, loaded, ids, (None, pair_types(T=16, seed=6)), real_vocab)
  again = api.load(tmp_path)
  assert again.config.objective == objective and again.config.model.type_vocab_size == 2
  assert_same_params(again.params, loaded.params)


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
  perturb_jaxlm(model, 7)
  loaded = api.Pretrained(model=model, tokenizer=tok, config=config)
  hf_export.to_hf(config, loaded.params, tmp_path, tokenizer=tok)
  hf_cfg = json.loads((tmp_path / "config.json").read_text())
  assert hf_cfg["architectures"] == [cls.__name__] and hf_cfg["pad_token_id"] == pad
  assert hf_cfg["max_position_embeddings"] == config.model.max_seq_len + pad + 1
  assert hf_cfg["type_vocab_size"] == (type_vocab_size or 1)
  hf_model = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
  assert type(hf_model) is cls
  real_vocab = tok.get_vocab_size()
  ids = random_ids(T=16, vocab=real_vocab, seed=7, low=pad + 1)
  assert_same_outputs(hf_model, loaded, ids,
                       (None, pair_types(T=16, seed=7)) if type_vocab_size else (None,), real_vocab)
  # Trailing [PAD]s under an attention mask leave the real tokens' positions and logits alone.
  padded = np.concatenate([ids, np.full((ids.shape[0], 4), pad)], axis=1)
  with torch.no_grad():
    theirs = hf_model(input_ids=torch.from_numpy(padded),
                      attention_mask=torch.from_numpy((padded != pad).astype(np.int64))).logits
  assert max_diff(theirs.numpy()[:, :16, :real_vocab], loaded.logits(ids)[..., :real_vocab]) < TOL

  again = api.load(tmp_path)
  m = again.config.model
  assert (again.config.objective, m.norm, m.embed_norm, m.type_vocab_size, m.max_seq_len) == (
    "mlm", "pre", embed_norm, type_vocab_size, config.model.max_seq_len)
  assert_same_params(again.params, loaded.params)
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
  hf_model = perturb_torch(model_cls(config), 8)
  hf_model.save_pretrained(tmp_path, safe_serialization=True)
  loaded = api.load(tmp_path)
  m = loaded.config.model
  assert (m.norm, m.embed_norm, m.activation) == (
    "pre", model_cls is transformers.RobertaPreLayerNormForMaskedLM, "gelu_exact")
  assert (m.max_seq_len, m.type_vocab_size) == (P - 2, config.type_vocab_size)
  ids = random_ids(low=2)  # above the pad id 1
  types = (None, pair_types()) if config.type_vocab_size > 1 else (None,)
  assert_same_outputs(hf_model, loaded, ids, types, V)


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
