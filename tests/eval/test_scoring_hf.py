"""The BLiMP sentence scores of a Hugging Face model loaded with `jaxlm.load` equal what
transformers computes for the same sentences (random tiny GPT-2 and BERT, to 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from jaxlm import api, scoring
from jaxlm.data import tokenizer as tokenization
from jaxlm.data.special_tokens import MASK, SEP

SENTENCES = ["The cats sleep soundly.", "Who did the unfamiliar visitors see?",
             "A dog barked at them."]
TEXT = " ".join(SENTENCES * 30) + " the a an of in on at by with from to for and or but"


def _hf_dir(kind: str, tmp_path):
  tok = tokenization.train_tokenizer("wordpiece" if kind == "bert" else "bpe", [TEXT], 120)
  V = tok.get_vocab_size()
  torch.manual_seed(0)
  if kind == "bert":
    config = transformers.BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=37,
                                     max_position_embeddings=64)
    model = transformers.BertForMaskedLM(config)
  else:
    config = transformers.GPT2Config(vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                                     bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(config)
  gen = torch.Generator().manual_seed(1)
  with torch.no_grad():  # fresh HF models have zero biases and unit norms: perturb them
    for p in model.parameters():
      p.add_(0.05 * torch.randn(p.shape, generator=gen))
  model.eval().save_pretrained(tmp_path, safe_serialization=True)
  tok.save(str(tmp_path / "tokenizer.json"))
  return tok, model


def _logp(model, rows: list[list[int]]) -> np.ndarray:
  ids = torch.tensor(rows)
  kwargs = {"attention_mask": torch.ones_like(ids)}
  if isinstance(model, transformers.BertPreTrainedModel):
    kwargs["token_type_ids"] = torch.zeros_like(ids)
  with torch.no_grad():
    return torch.log_softmax(model(input_ids=ids, **kwargs).logits.double(), -1).numpy()


def test_gpt2_causal_scores_match_transformers(tmp_path):
  tok, model = _hf_dir("gpt2", tmp_path)
  got = scoring.sentence_scores(api.load(tmp_path), SENTENCES)
  sep = tok.token_to_id(SEP)
  for sentence, score in zip(SENTENCES, got):
    ids = [sep] + tok.encode(sentence, add_special_tokens=False).ids
    logp = _logp(model, [ids])[0]
    want = sum(logp[i, ids[i + 1]] for i in range(len(ids) - 1))
    assert score == pytest.approx(want, abs=1e-4)


def test_bert_word_level_pll_matches_transformers(tmp_path):
  tok, model = _hf_dir("bert", tmp_path)
  got = scoring.sentence_scores(api.load(tmp_path), SENTENCES)
  mask = tok.token_to_id(MASK)
  for sentence, score in zip(SENTENCES, got):
    enc = tok.encode(sentence, add_special_tokens=False)
    rows = []
    for i in range(len(enc.ids)):
      rows.append([mask if j == i or (j > i and enc.word_ids[j] == enc.word_ids[i]) else t
                   for j, t in enumerate(enc.ids)])
    logp = _logp(model, rows)
    want = sum(logp[i, i, target] for i, target in enumerate(enc.ids))
    assert score == pytest.approx(want, abs=1e-4)
