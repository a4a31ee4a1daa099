"""KV-cached generation equals full recomputation; greedy decoding is deterministic."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers.model import tiny_config

from jaxlm import generate as generate_module
from jaxlm.generate import generate, make_step, sample, unmask
from jaxlm.model.cache import KVCache
from jaxlm.model.masks import MaskSpec
from jaxlm.objectives.build import build_model


def _full_greedy(model, prompt: list[int], n: int) -> tuple[list[int], list[np.ndarray]]:
  """Greedy decoding by recomputing the whole sequence at every step (no cache)."""
  tokens, logits_seen = list(prompt), []
  for _ in range(n):
    x = jnp.asarray([tokens], jnp.int32)
    logits = model.lm_logits(model.hidden(x, MaskSpec("causal")))[0, -1]
    logits_seen.append(np.asarray(logits))
    tokens.append(int(jnp.argmax(logits)))
  return tokens[len(prompt):], logits_seen


@pytest.mark.parametrize("position, scan", [("learned", True), ("rope", False)])
def test_cached_decoding_equals_full_recomputation(position, scan):
  cfg = tiny_config("clm", position=position, scan_layers=scan)
  model = build_model(cfg, 0)
  prompts = [[5, 17, 42, 9, 33], [7, 8]]  # different lengths: left padding is exercised
  graphdef, _ = nnx.split(model)
  step = make_step(graphdef)
  cached = generate(model, prompts, 8, step=step)
  for prompt, out in zip(prompts, cached):
    expected, _ = _full_greedy(model, prompt, 8)
    assert out == expected
  assert step._cache_size() == 2  # prefill and one decode step, however many tokens
  again = generate(model, prompts, 8, step=step)
  assert again == cached  # greedy is deterministic


def test_first_cached_logits_match_the_full_forward():
  cfg = tiny_config("clm")
  model = build_model(cfg, 1)
  graphdef, params = nnx.split(model)
  prompt = [5, 6, 7, 8, 9, 10]
  S = len(prompt) + 1
  L, H, K = cfg.model.num_layers, cfg.model.num_heads, cfg.model.head_dim
  cache = dataclasses.replace(KVCache.empty(L, 1, S, H, K, jnp.float32),
                              valid_BxS=jnp.asarray([[True] * len(prompt) + [False]]))
  logits, cache = make_step(graphdef)(params, cache, jnp.asarray([prompt], jnp.int32),
                                      jnp.arange(len(prompt))[None])
  assert cache.k.shape == (L, 1, S, H, K) and not np.asarray(cache.k[:, :, -1]).any()
  _, full = _full_greedy(model, prompt, 1)
  np.testing.assert_allclose(np.asarray(logits[0]), full[0], rtol=1e-5, atol=1e-5)


def test_sampling_respects_top_k_and_top_p():
  logits = jnp.log(jnp.asarray([[0.5, 0.3, 0.15, 0.05]]))
  keys = jax.random.split(jax.random.key(0), 400)
  top2 = {int(sample(k, logits, 1.0, 2, 1.0)[0]) for k in keys}
  assert top2 == {0, 1}
  nucleus = {int(sample(k, logits, 1.0, 0, 0.7)[0]) for k in keys}
  assert nucleus == {0, 1}  # 0.5 < 0.7 <= 0.5 + 0.3
  assert {int(sample(k, logits, 0.0, 0, 1.0)[0]) for k in keys[:5]} == {0}


def test_generate_fill_mask_and_export_commands(corpus, tmp_path):
  import subprocess
  import sys

  from conftest import REPO

  from jaxlm.config import load_config
  from jaxlm.train.loop import train

  common = {"steps": "2", "batch_size": "8", "seq_len": "64", "data.vocab_size": "512",
            "eval_every": "0", "data.source": f"text:{corpus}/inaugural",
            "data.cache_dir": str(tmp_path / "cache")}
  for objective in ("clm", "mlm"):
    train(load_config(REPO / "configs/tiny.py", {**common, "objective": objective}),
          tmp_path / objective, quiet=True)

  def jaxlm(*args):
    result = subprocess.run([sys.executable, "-m", "jaxlm", *args], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.splitlines()

  lines = jaxlm("generate", "--workdir", str(tmp_path / "clm"), "--prompt", "We the people",
                "--prompt", "Fellow", "--max_new_tokens", "5", "--temperature", "0")
  assert "".join(lines).count("We the people") == 1 and "Fellow" in "".join(lines)
  lines = jaxlm("fill-mask", "--workdir", str(tmp_path / "mlm"), "--text",
                "The [MASK] of the people.", "--top_k", "3")
  probs = [float(line.split("\t")[0]) for line in lines]
  assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
  jaxlm("export", "--workdir", str(tmp_path / "clm"), "--out", str(tmp_path / "hf"))
  assert (tmp_path / "hf/model.safetensors").exists()
  refused = subprocess.run([sys.executable, "-m", "jaxlm", "generate", "--workdir",
                            str(tmp_path / "mlm"), "--prompt", "x"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
  assert refused.returncode == 2 and "use fill-mask" in refused.stderr

  # The same through the Python API: a plain string is one prompt (and one sentence).
  import jaxlm
  from jaxlm import api, scoring
  clm, mlm = jaxlm.load(tmp_path / "clm"), jaxlm.load(tmp_path / "mlm")
  one = clm.generate("We the people", max_new_tokens=5, temperature=0)
  assert isinstance(one, str) and one.startswith("We the people")
  assert clm.generate(["We the people", "Fellow"], max_new_tokens=5, temperature=0) == [
    one, api.generate_text(clm, ["Fellow"], 5, temperature=0)[0]]
  with pytest.raises(TypeError, match="prompts is a list of strings"):
    api.generate_text(clm, "We the people")
  sentences = ["The people of the land.", "Land the of people the."]
  for lm in (clm, mlm):
    assert lm.score(sentences[0]) == scoring.sentence_scores(lm, sentences[:1])[0]
    np.testing.assert_array_equal(lm.score(sentences), scoring.sentence_scores(lm, sentences))
  assert mlm.fill_mask("The [MASK] of the people.", 3) == api.fill_mask(
    mlm, "The [MASK] of the people.", 3)


class _Denoiser:
  """Stands in for the model in `unmask`: logits that put all mass on token 10 + the call's
  index + the position (so a token shows when it was drawn), recording each call's input."""

  def __init__(self, V: int = 64):
    self.V, self.inputs = V, []

  def __call__(self, params, tokens_BxT, segment_ids_BxT):
    self.inputs.append(np.asarray(tokens_BxT))
    B, T = tokens_BxT.shape
    best_BxT = 10 + len(self.inputs) - 1 + np.arange(T)[None].repeat(B, 0)
    return jnp.asarray(np.eye(self.V, dtype=np.float32)[best_BxT] * 50.0)


def test_unmasking_reveals_each_position_at_a_uniform_time_and_keeps_it(monkeypatch):
  """MDLM's sampler: a position is still masked at time t with probability t, so the share of
  [MASK] the k-th of S calls reads is 1 - k/S; a revealed token never changes; the last step
  reveals the rest."""
  denoiser = _Denoiser()
  monkeypatch.setattr(generate_module, "make_denoiser", lambda graphdef: denoiser)
  model = build_model(tiny_config("mdlm", vocab_size=64, max_seq_len=64), 0)
  mask, S, N = 3, 4, 8
  prompts = [[5, 6]] * 64
  out = unmask(model, prompts, N, mask_id=mask, steps=S, temperature=0.0, seed=1)
  assert len(denoiser.inputs) == S
  for k, tokens in enumerate(denoiser.inputs):
    share = (tokens[:, 2:] == mask).mean()
    assert abs(share - (1 - k / S)) < 0.06, (k, share)
    assert (tokens[:, :2] == 5 + np.arange(2)).all()  # the prompt is read as it is
  final = np.asarray(out)
  assert (final != mask).all()
  # Each token is the one drawn at its reveal: 10 + call index + position, and it stayed.
  step_of = final - 10 - (2 + np.arange(N))[None]
  assert set(np.unique(step_of)) <= set(range(S))
  for k, tokens in enumerate(denoiser.inputs[1:], start=1):
    shown = tokens[:, 2:] != mask
    assert (tokens[:, 2:][shown] == final[shown]).all() and (step_of[shown] < k).all()


def test_mdlm_generates_by_unmasking_and_others_say_what_generates(corpus):
  from jaxlm.api import Pretrained
  from jaxlm.config import DataError
  from jaxlm.data import tokenizer as tokenization

  plays = "\n".join(f.read_text() for f in (corpus / "tinyshakespeare").glob("*.txt"))
  tok = tokenization.train_tokenizer("bpe", [plays], 300)
  config = tiny_config("mdlm", vocab_size=320, max_seq_len=64)
  lm = Pretrained(model=build_model(config, 0), tokenizer=tok, config=config)
  text = lm.generate("the king", max_new_tokens=6, steps=3, seed=4)
  assert text.startswith("the king") and text == lm.generate("the king", max_new_tokens=6,
                                                              steps=3, seed=4)
  ids = unmask(lm.model, [[tok.token_to_id("[CLS]")] + tok.encode("the king").ids], 6,
               mask_id=tok.token_to_id("[MASK]"), steps=3, temperature=0.8, top_k=50, seed=4,
               banned=tuple(tok.token_to_id(s) for s in tokenization.SPECIALS),
               vocab_in_use=tok.get_vocab_size())[0]
  assert len(ids) == 6 and not set(ids) & {tok.token_to_id(s) for s in tokenization.SPECIALS}
  assert text == "the king" + tok.decode(ids)
  mlm = dataclasses.replace(lm, config=dataclasses.replace(config, objective="mlm"))
  with pytest.raises(DataError, match="generation needs one of .*mdlm"):
    mlm.generate("the king")
  clm_config = tiny_config("clm", vocab_size=320, max_seq_len=64)
  clm = Pretrained(model=build_model(clm_config, 0), tokenizer=tok, config=clm_config)
  with pytest.raises(DataError, match="steps=3 is for generation by unmasking"):
    clm.generate("the king", steps=3)
