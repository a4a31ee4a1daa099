"""Tiny random transformers checkpoints, built once per module and saved as safetensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from helpers.hf import V, D, L, H, P, perturb_torch, saved_bert


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
  return saved_bert(tmp_path_factory, transformers.BertForMaskedLM, 1)


@pytest.fixture(scope="module")
def hf_bert_pretraining(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
  """BertForPreTraining: MLM head, pooler and next-sentence head, two token types."""
  return saved_bert(tmp_path_factory, transformers.BertForPreTraining, 5, type_vocab_size=2)


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
  torch.manual_seed(0)
  config = transformers.GPT2Config(vocab_size=V, n_embd=D, n_layer=L, n_head=H, n_positions=P,
                                   bos_token_id=0, eos_token_id=0)
  model = perturb_torch(transformers.GPT2LMHeadModel(config), 2)
  out = tmp_path_factory.mktemp("hf_gpt2")
  model.save_pretrained(out, safe_serialization=True)
  return out, model
