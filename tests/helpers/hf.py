"""Builders, fixtures and comparisons shared by the Hugging Face interop tests: tiny configs,
perturbed random models on both sides (saved tiny transformers checkpoints as module fixtures:
import them by name), token ids and types, and logits compared at TOL."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx

from jaxlm import api
from jaxlm.config import Config, ModelConfig
from jaxlm.model.masks import MaskSpec

TOL = 1e-4
V, D, L, H, P = 99, 32, 2, 4, 64  # vocab, hidden, layers, heads, max positions
TEXTS = ["the cat sat on the mat", "a dog ran in the park", "the bird sang on a tree"] * 20


def tiny_config(objective: str, **model) -> Config:
  shape = dict(vocab_size=256, max_seq_len=128, embed_dim=32, num_heads=4, num_layers=2,
               mlp_dim=64)
  return Config(objective=objective, seq_len=16, batch_size=8, steps=10,
                model=ModelConfig(**{**shape, **model})).validate()


def perturb_torch(model: torch.nn.Module, seed: int) -> torch.nn.Module:
  """Fresh HF models have zero biases and unit norms, which would hide mapping mistakes."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for p in model.parameters():
      p.add_(0.05 * torch.randn(p.shape, generator=gen))
  return model.eval()


def perturb_jaxlm(model: nnx.Module, seed: int) -> None:
  rng = np.random.default_rng(seed)
  params = nnx.state(model, nnx.Param)
  nnx.update(model, jax.tree.map(lambda x: x + 0.05 * rng.standard_normal(x.shape, np.float32),
                                 params))


def random_ids(B: int = 3, T: int = 17, vocab: int = V, seed: int = 0, low: int = 0) -> np.ndarray:
  """Random ids in [low, vocab); RoBERTa tests start above the pad id, whose tokens RoBERTa
  gives the pad position row."""
  return np.random.default_rng(seed).integers(low, vocab, (B, T)).astype(np.int64)


def pair_types(B: int = 3, T: int = 17, seed: int = 0) -> np.ndarray:
  """Sentence-pair token types: 0 up to a per-row split, 1 after it (as [CLS] A [SEP] B [SEP])."""
  split_B = np.random.default_rng(seed).integers(2, T - 1, (B,))
  return (np.arange(T)[None, :] >= split_B[:, None]).astype(np.int64)


def torch_logits(model: torch.nn.Module, ids: np.ndarray) -> np.ndarray:
  ids_t = torch.from_numpy(ids)
  kwargs = {"attention_mask": torch.ones_like(ids_t)}
  if isinstance(model, transformers.BertPreTrainedModel):
    kwargs["token_type_ids"] = torch.zeros_like(ids_t)  # type 0, as jaxlm's logits() reads all
  with torch.no_grad():
    return model(input_ids=ids_t, **kwargs).logits.float().numpy()


def torch_outputs(model: torch.nn.Module, ids: np.ndarray,
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


def jaxlm_outputs(loaded: api.Pretrained, ids: np.ndarray,
                   types: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
  """The same from a jaxlm MLM model: hidden states with `types` as token types, then its heads."""
  model = loaded.model
  h_BxTxD = model.hidden(jnp.asarray(ids, jnp.int32), MaskSpec("bidirectional"),
                         token_types_BxT=None if types is None else jnp.asarray(types, jnp.int32))
  nsp_Bx2 = None if model.nsp_head is None else np.asarray(model.nsp_logits(h_BxTxD))
  return np.asarray(model.mlm_logits(h_BxTxD), np.float32), nsp_Bx2


def assert_same_outputs(hf_model: torch.nn.Module, loaded: api.Pretrained, ids: np.ndarray,
                         types_options: tuple[np.ndarray | None, ...], vocab: int) -> None:
  """MLM logits over the first `vocab` ids (and NSP logits) agree for every token-type input."""
  for types in types_options:
    (theirs, theirs_nsp), (ours, ours_nsp) = (torch_outputs(hf_model, ids, types),
                                              jaxlm_outputs(loaded, ids, types))
    assert max_diff(ours[..., :vocab], theirs[..., :vocab]) < TOL, types
    assert (ours_nsp is None) == (theirs_nsp is None)
    if ours_nsp is not None:
      assert max_diff(ours_nsp, theirs_nsp) < TOL, types


def assert_same_params(a: nnx.State, b: nnx.State) -> None:
  flat_a, flat_b = nnx.to_flat_state(a), nnx.to_flat_state(b)
  assert [path for path, _ in flat_a] == [path for path, _ in flat_b]
  for (path, x), (_, y) in zip(flat_a, flat_b):
    np.testing.assert_allclose(np.asarray(x.get_value()), np.asarray(y.get_value()), atol=1e-6,
                               err_msg=str(path))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
  assert a.shape == b.shape, (a.shape, b.shape)
  return float(np.max(np.abs(a - b)))


def saved_bert(factory, cls, seed: int, **config) -> tuple[Path, torch.nn.Module]:
  """A tiny random transformers BERT of class `cls`, perturbed and saved as safetensors."""
  torch.manual_seed(0)
  bert = transformers.BertConfig(vocab_size=V, hidden_size=D, num_hidden_layers=L,
                                 num_attention_heads=H, intermediate_size=37,
                                 max_position_embeddings=P, **config)
  model = perturb_torch(cls(bert), seed)
  out = factory.mktemp(cls.__name__)
  model.save_pretrained(out, safe_serialization=True)
  return out, model


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
