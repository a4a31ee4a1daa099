"""RoPE models through `to_hf`: pre-LN causal LMs as GPTNeoXForCausalLM and pre-LN masked LMs as
EsmForMaskedLM give jaxlm's logits in transformers (all positions real, and with trailing padding
under an attention mask); a clm or mlm model's token-type row 0 is folded into the input
embeddings. What no class reproduces is refused in one line, known from the config alone, and
`jaxlm train` says it when it starts (the README's main job: its CLM exports, its MLM does not)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from flax import nnx
from helpers.hf import TEXTS, TOL, max_diff, perturb_jaxlm, random_ids, tiny_config, torch_logits

from jaxlm import api, cli, preflight
from jaxlm.config import DataError, load_config, replace_at
from jaxlm.data.tokenizer import train_tokenizer
from jaxlm.interop import hf_export
from jaxlm.objectives.build import build_model
from jaxlm.studies.config import CompareConfig

PAD = 4  # trailing positions masked out in the padded comparison


def _export(config, tokenizer, tmp_path, seed: int) -> api.Pretrained:
  """A perturbed random jaxlm model, written by to_hf into tmp_path."""
  model = build_model(config, seed)
  perturb_jaxlm(model, seed)
  loaded = api.Pretrained(model=model, tokenizer=tokenizer, config=config)
  hf_export.to_hf(config, loaded.params, tmp_path, tokenizer=tokenizer)
  return loaded


def _load(auto, out_dir) -> torch.nn.Module:
  """The exported model; every tensor its class has came from the export (none random)."""
  model, info = auto.from_pretrained(out_dir, output_loading_info=True)
  assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
  return model.eval()


def _masked_logits(model: torch.nn.Module, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    return model(input_ids=torch.from_numpy(ids),
                 attention_mask=torch.from_numpy(mask)).logits.float().numpy()


def _assert_same_logits(hf_model: torch.nn.Module, loaded: api.Pretrained, vocab: int,
                        seed: int) -> float:
  """Logits over the first `vocab` ids agree on real tokens, and on the real part of rows whose
  last PAD positions are padding under an attention mask. Returns the largest difference."""
  ids = random_ids(T=16, vocab=vocab, seed=seed)
  diffs = [max_diff(torch_logits(hf_model, ids)[..., :vocab], loaded.logits(ids)[..., :vocab])]
  padded, mask = ids.copy(), np.ones_like(ids)
  padded[:, -PAD:], mask[:, -PAD:] = 0, 0
  real = _masked_logits(hf_model, padded, mask)[:, :-PAD, :vocab]
  diffs.append(max_diff(real, loaded.logits(ids[:, :-PAD])[..., :vocab]))
  assert max(diffs) < TOL, diffs
  return max(diffs)


@pytest.mark.parametrize("scan_layers, type_vocab_size, activation, theta", [
  (True, 0, "gelu_tanh", 500.0),  # configs/tiny.py's block; tied embeddings, tokenizer written
  (False, 2, "gelu_exact", 10000.0),  # type row 0 folded into embed_in, untied from embed_out
])
def test_rope_clm_exports_to_gpt_neox(scan_layers, type_vocab_size, activation, theta, tmp_path):
  config = tiny_config("clm", norm="pre", position="rope", rope_theta=theta,
                       activation=activation, scan_layers=scan_layers,
                       type_vocab_size=type_vocab_size, vocab_size=384)
  tok = train_tokenizer("bpe", TEXTS, 300) if type_vocab_size == 0 else None
  loaded = _export(config, tok, tmp_path, seed=11)
  hf_model = _load(transformers.AutoModelForCausalLM, tmp_path)
  assert type(hf_model) is transformers.GPTNeoXForCausalLM
  hf = hf_model.config
  assert not hf.use_parallel_residual and hf.tie_word_embeddings == (type_vocab_size == 0)
  assert hf.rope_parameters["partial_rotary_factor"] == 1.0
  assert hf.rope_parameters["rope_theta"] == theta
  _assert_same_logits(hf_model, loaded, tok.get_vocab_size() if tok else 384, seed=11)
  if tok is not None:  # written as for GPT-2: [SEP] ends a text, AutoTokenizer reads it as is
    assert hf.eos_token_id == tok.token_to_id("[SEP]")
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert hf_tok(TEXTS[0], add_special_tokens=False)["input_ids"] == tok.encode(TEXTS[0]).ids


@pytest.mark.parametrize("embed_norm, type_vocab_size", [(False, 0), (True, 2)])
def test_rope_pre_ln_mlm_exports_to_esm(embed_norm, type_vocab_size, tmp_path):
  config = tiny_config("mlm", norm="pre", position="rope", rope_theta=500.0,
                       activation="gelu_exact", embed_norm=embed_norm,
                       type_vocab_size=type_vocab_size, scan_layers=not embed_norm)
  tok = train_tokenizer("wordpiece", TEXTS, 200) if not embed_norm else None
  loaded = _export(config, tok, tmp_path, seed=12)
  hf_model = _load(transformers.AutoModelForMaskedLM, tmp_path)
  assert type(hf_model) is transformers.EsmForMaskedLM
  hf = hf_model.config
  assert (hf.position_embedding_type, hf.token_dropout) == ("rotary", False)
  assert hf.emb_layer_norm_before == embed_norm and hf.rope_theta == 500.0
  _assert_same_logits(hf_model, loaded, tok.get_vocab_size() if tok else 256, seed=12)
  if tok is not None:
    assert hf.mask_token_id == tok.token_to_id("[MASK]")
    assert transformers.AutoTokenizer.from_pretrained(tmp_path).mask_token == "[MASK]"


@pytest.mark.parametrize("objective, overrides, why", [
  # The README's MLM run: configs/tiny.py's tanh GELU.
  ("mlm", {"norm": "pre", "position": "rope"},
   "EsmForMaskedLM's MLP and MLM head always apply exact GELU"),
  ("mlm", {"norm": "post", "position": "rope", "activation": "gelu_exact"},
   "(EsmForMaskedLM) is pre-LN"),
  ("mlm_nsp", {"norm": "pre", "position": "rope", "activation": "gelu_exact",
               "type_vocab_size": 2}, "EsmForMaskedLM has no next-sentence head"),
  ("clm", {"norm": "post", "position": "rope"}, "GPT-NeoX (clm) is pre-LN"),
  ("clm", {"norm": "pre", "position": "rope", "embed_norm": True},
   "GPT-NeoX has no embedding LayerNorm"),
  ("clm", {"position": "none"}, "GPT-2 has learned absolute positions and GPT-NeoX rotary ones"),
  ("mlm", {"position": "sinusoidal"}, "learned absolute or rotary positions"),
  ("prefix_lm", {"norm": "pre", "position": "rope"}, "prefix-LM"),
])
def test_refusals_are_known_from_the_config_alone(objective, overrides, why, tmp_path):
  config = tiny_config(objective, **overrides)
  reason = hf_export.export_blocker(config)
  assert reason is not None and why in reason and "\n" not in reason
  with pytest.raises(DataError) as e:
    hf_export.to_hf(config, nnx.state(build_model(config, 0), nnx.Param), tmp_path)
  assert str(e.value) == f"to_hf: {reason}"
  assert not (tmp_path / "model.safetensors").exists()


def _readme_run(objective: str):
  """A pre-training run of the README's main job (`jaxlm compare`: compare/tiny)."""
  pretrain = load_config("compare/tiny", expected=CompareConfig).pretrain
  return preflight.pretrain_config(replace_at(pretrain, "objective", objective))


def test_both_readme_runs_export_and_a_blocker_is_known_before_training():
  assert _readme_run("clm").model.position == "rope"
  assert hf_export.export_blocker(_readme_run("clm")) is None  # GPTNeoXForCausalLM
  assert hf_export.export_blocker(_readme_run("mlm")) is None  # EsmForMaskedLM
  tanh = replace_at(_readme_run("mlm"), "model.activation", "gelu_tanh")
  reason = hf_export.export_blocker(tanh)
  assert reason.startswith("model.activation=gelu_tanh with model.norm=pre; EsmForMaskedLM")
  assert "--config.model.activation=gelu_exact" in reason


class _Started(Exception):
  pass


def test_jaxlm_train_says_so_in_one_line_before_training(tmp_path, capsys, monkeypatch):
  """The note is on stderr before training starts (the stub stands for the training loop)."""
  from jaxlm.train import loop
  seen_at_start = []

  def train(*args, **kwargs):
    seen_at_start.append(capsys.readouterr().err)
    raise _Started

  monkeypatch.setattr(loop, "train", train)
  args = ["train", "--config", "tiny", "--workdir", str(tmp_path / "run"),
          "--config.objective=mlm", "--config.model.activation=gelu_tanh",
          "--config.model.position=rope"]
  with pytest.raises(_Started):
    cli.main(args)
  lines = seen_at_start[0].splitlines()
  assert len(lines) == 1 and lines[0].startswith(
    "jaxlm: note: this run will not export to transformers: model.activation=gelu_tanh"), lines
  with pytest.raises(_Started):  # an exportable run: nothing
    cli.main(args[:-3] + ["--config.model.position=rope"])
  assert seen_at_start[1] == ""
