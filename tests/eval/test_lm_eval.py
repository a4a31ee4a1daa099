"""The lm-evaluation-harness adapter (`jaxlm.eval.lm_eval_model`, the lmeval extra): a six-doc
multiple-choice task committed in tests/data/lm_eval/ runs through `simple_evaluate`; a tiny
GPT-2 exported by jaxlm gets the log-likelihoods (and greedy flags, rolling scores) the harness's
own Hugging Face backend computes on the exported directory; a masked LM's are jaxlm's PLL
scorer's; generation is jaxlm's greedy generation cut at `until`, and refused for a masked LM;
`jaxlm lm-eval` misuse is one line. Nothing is downloaded."""

from __future__ import annotations

import os
import sys

os.environ["HF_DATASETS_OFFLINE"] = "1"  # read when datasets / huggingface_hub are imported
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import TESTS  # noqa: E402
from helpers.hf import TEXTS, perturb_jaxlm, tiny_config  # noqa: E402

from jaxlm import (  # noqa: E402
  api,
  cli,
  scoring,  # noqa: E402
)
from jaxlm.data import tokenizer as tokenization  # noqa: E402
from jaxlm.data.special_tokens import MASK, SEP  # noqa: E402
from jaxlm.errors import DataError  # noqa: E402
from jaxlm.generate import generate  # noqa: E402
from jaxlm.objectives.build import build_model  # noqa: E402

TASKS = TESTS / "data" / "lm_eval"
TOL = 1e-4
SHAPE = dict(embed_dim=16, num_heads=2, num_layers=1, mlp_dim=32, max_seq_len=32)  # ~7k params
LONG = " ".join(TEXTS[:12])  # 60 words: longer than max_seq_len, so scored in windows


@pytest.fixture(scope="module")
def harness():
  return pytest.importorskip("lm_eval", reason="needs the lmeval extra: pip install "
                             "'jaxlm[lmeval]'")


def _tiny(objective: str, kind: str, **model) -> api.Pretrained:
  tok = tokenization.train_tokenizer(kind, TEXTS, 300)
  # The tokenizer's size exactly: the harness's backend normalises over every embedding row.
  config = tiny_config(objective, vocab_size=tok.get_vocab_size(), **SHAPE, **model)
  net = build_model(config, 0)
  perturb_jaxlm(net, 0)
  return api.Pretrained(model=net, tokenizer=tok, config=config)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
  """A tiny GPT-2 exported by jaxlm (doc token when loaded back: [SEP])."""
  from jaxlm.interop import hf_export
  lm = _tiny("clm", "bpe", norm="pre")
  out = tmp_path_factory.mktemp("gpt2")
  hf_export.to_hf(lm.config, lm.params, out, lm.tokenizer)
  return out


@pytest.fixture(scope="module")
def clm(harness, gpt2_dir):
  from jaxlm.eval.lm_eval_model import JaxlmLM
  return JaxlmLM(path=str(gpt2_dir), batch_size=8)


@pytest.fixture(scope="module")
def hf_backend(harness, gpt2_dir, clm):
  from lm_eval.models.huggingface import HFLM
  start = clm.loaded.tokenizer.token_to_id(scoring.context_token(clm.loaded))  # [SEP]
  return HFLM(pretrained=str(gpt2_dir), device="cpu", batch_size=8, prefix_token_id=start)


@pytest.fixture(scope="module")
def mlm(harness):
  from jaxlm.eval.lm_eval_model import JaxlmLM
  return JaxlmLM(path=_tiny("mlm", "wordpiece", norm="post", activation="gelu_exact"),
                 batch_size=16)


def _requests(kind: str, args: list[tuple]) -> list:
  from lm_eval.api.instance import Instance
  return [Instance(kind, {}, a, n) for n, a in enumerate(args)]


def _evaluate(model, monkeypatch, limit: int | None = None, **model_args) -> dict:
  """The committed task through `simple_evaluate` (`model`: a registered name or an LM; `limit`:
  its first docs only)."""
  import lm_eval
  from lm_eval.tasks import TaskManager
  monkeypatch.chdir(TASKS)  # the task's data_files path is relative to it
  tasks = TaskManager(include_path=str(TASKS), include_defaults=False)
  return lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=["jaxlm_tiny_mc"],
                                 task_manager=tasks, log_samples=True, limit=limit)


def _scored_requests(results: dict) -> tuple[list[tuple[str, str]], list[tuple[float, bool]]]:
  samples = results["samples"]["jaxlm_tiny_mc"]
  args = [tuple(a) for s in samples for a in s["arguments"]]
  return args, [tuple(r[0]) for s in samples for r in s["resps"]]


def test_clm_loglikelihoods_are_the_harness_hf_backends(clm, hf_backend, gpt2_dir,
                                                         monkeypatch):
  results = _evaluate("jaxlm", monkeypatch, path=str(gpt2_dir), batch_size=8)  # by name
  args, got = _scored_requests(results)
  assert len(args) == 14 and ("", " the cat sat") in args  # an empty context among them
  assert max(len(clm.loaded.tokenizer.encode(c).ids) for c, _ in args) > SHAPE["max_seq_len"]
  # jaxlm reads every context after the token documents open with ([SEP] for a Hugging Face
  # directory); the backend is given that token in the text.
  start = scoring.context_token(clm.loaded)
  want = hf_backend.loglikelihood(_requests("loglikelihood", [(start + c, x) for c, x in args]))
  diffs = [abs(g[0] - w[0]) for g, w in zip(got, want)]
  print(f"max |jaxlm - HF| loglikelihood: {max(diffs):.2e}")
  assert max(diffs) < TOL and [g[1] for g in got] == [w[1] for w in want]
  # The task's accuracy is the backend's argmax over each doc's choices.
  samples = results["samples"]["jaxlm_tiny_mc"]
  lls, right = iter(w[0] for w in want), []
  for s in samples:
    choice_lls = [next(lls) for _ in s["arguments"]]
    right.append(int(np.argmax(choice_lls)) == s["target"])
  assert results["results"]["jaxlm_tiny_mc"]["acc,none"] == pytest.approx(np.mean(right))


def test_clm_rolling_loglikelihoods_are_the_harness_hf_backends(clm, hf_backend):
  # By default the rows are sharded over every device (the tests' 8 host devices).
  assert dict(clm.loaded.mesh.shape) == {"data": 8, "fsdp": 1, "tensor": 1}
  texts = [TEXTS[0], LONG, TEXTS[1] + " and " + TEXTS[2]]
  assert len(clm.loaded.tokenizer.encode(LONG).ids) > 2 * SHAPE["max_seq_len"]
  got = clm.loglikelihood_rolling(_requests("loglikelihood_rolling", [(t,) for t in texts]))
  want = hf_backend.loglikelihood_rolling(_requests("loglikelihood_rolling",
                                                    [(t,) for t in texts]))
  print(f"max |jaxlm - HF| rolling: {max(abs(g - w) for g, w in zip(got, want)):.2e}")
  np.testing.assert_allclose(got, want, atol=TOL)
  one = type(clm)(path=clm.loaded, batch_size=8, mesh="none")  # the same model on one device
  assert one.loaded.mesh is None
  np.testing.assert_allclose(one.loglikelihood_rolling(
    _requests("loglikelihood_rolling", [(t,) for t in texts])), got, rtol=1e-5)
  assert clm.loglikelihood(_requests("loglikelihood", [("", LONG)]))[0][0] == pytest.approx(
    got[1], abs=TOL)


def test_clm_generate_until_is_jaxlms_greedy_generation_cut_at_until(clm):
  tok, contexts = clm.loaded.tokenizer, ["the cat sat on", "a dog ran in"]
  start = tok.token_to_id(scoring.context_token(clm.loaded))
  new_ids = generate(clm.loaded.model, [[start] + tok.encode(c).ids for c in contexts], 12,
                     temperature=0.0, stop_id=tok.token_to_id(SEP),
                     vocab_in_use=tok.get_vocab_size())
  full = [tok.decode(ids) for ids in new_ids]
  got = clm.generate_until(_requests("generate_until", [(c, {"until": [], "max_gen_toks": 12})
                                                        for c in contexts]))
  assert got == full and all(full)
  stop = full[0][len(full[0]) // 2:][:2]
  cut = clm.generate_until(_requests("generate_until", [
    (c, {"until": [stop], "max_gen_toks": 12, "do_sample": False}) for c in contexts]))
  assert cut == [text.split(stop)[0] for text in full] and len(cut[0]) < len(full[0])
  # What greedy generation produced is what loglikelihood calls greedy.
  first = tok.decode(new_ids[1][:1])
  assert clm.loglikelihood(_requests("loglikelihood", [(contexts[1], first)]))[0][1]


def test_masked_loglikelihoods_are_jaxlms_pll(mlm, monkeypatch):
  sentences = TEXTS[:3]  # of one length, as the task's first docs: few shapes to compile
  pll = scoring.pll_scores(mlm.loaded, sentences)
  rolling = mlm.loglikelihood_rolling(_requests("loglikelihood_rolling",
                                                [(s,) for s in sentences]))
  no_context = mlm.loglikelihood(_requests("loglikelihood", [("", s) for s in sentences]))
  print(f"max |adapter - pll_scores|: {np.abs(np.subtract(rolling, pll)).max():.2e}")
  np.testing.assert_allclose(rolling, pll, atol=TOL)
  np.testing.assert_allclose([s for s, _ in no_context], pll, atol=TOL)
  # With a context: only the continuation's tokens are masked, each with the rest of its word.
  (got, _), = mlm.loglikelihood(_requests("loglikelihood", [("the cat sat on", " the mattree")]))
  tok = mlm.loaded.tokenizer
  enc = tok.encode("the cat sat on the mattree", add_special_tokens=False)
  ids, words, mask = enc.ids, enc.word_ids, tok.token_to_id(MASK)
  scored = range(len(tok.encode("the cat sat on").ids), len(ids))
  assert len(scored) > len(set(words[i] for i in scored))  # "mattree" is four pieces
  rows = np.asarray([[mask if j == i or j > i and words[j] == words[i] else t
                      for j, t in enumerate(ids)] for i in scored])
  logits = mlm.loaded.logits(rows)[..., :tok.get_vocab_size()].astype(np.float64)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  assert got == pytest.approx(sum(logp[r, i, ids[i]] for r, i in enumerate(scored)), abs=TOL)
  assert np.isfinite(mlm.loglikelihood_rolling(_requests("loglikelihood_rolling",
                                                         [(LONG,)]))).all()
  results = _evaluate(mlm, monkeypatch, limit=2)  # the task runs through the harness on PLL
  args, resps = _scored_requests(results)
  direct = mlm.loglikelihood(_requests("loglikelihood", args))
  np.testing.assert_allclose([r[0] for r in resps], [d[0] for d in direct], atol=TOL)


def test_mntp_rolling_loglikelihoods_are_jaxlms_pll(harness):
  """MNTP's rows open with the document token and read token i at position i−1."""
  from jaxlm.eval.lm_eval_model import JaxlmLM
  mntp = JaxlmLM(path=_tiny("mntp", "wordpiece"), batch_size=16)
  got = mntp.loglikelihood_rolling(_requests("loglikelihood_rolling", [(t,) for t in TEXTS[:3]]))
  np.testing.assert_allclose(got, scoring.pll_scores(mntp.loaded, TEXTS[:3]), atol=TOL)


def test_masked_model_refuses_generate_until_in_one_line(mlm):
  with pytest.raises(DataError) as error:
    mlm.generate_until(_requests("generate_until", [("the cat", {"until": ["\n"]})]))
  message = str(error.value)
  assert "\n" not in message and "pre-trained with mlm cannot generate text" in message
  assert "need one of clm, prefix_lm, hybrid" in message


def test_cli_without_harness_flags_is_one_line(harness, capsys):
  assert cli.main(["lm-eval"]) == cli.EXIT_BAD_INPUT
  assert cli.main(["lm-eval", "--model=hf", "--tasks", "x"]) == cli.EXIT_BAD_INPUT
  lines = capsys.readouterr().err.splitlines()
  assert len(lines) == 2 and all("--model_args path=RUN" in line for line in lines)


def test_cli_without_the_extra_is_one_line(monkeypatch, capsys):
  for name in ("lm_eval", "lm_eval.__main__"):  # as if not installed (None: import fails)
    monkeypatch.setitem(sys.modules, name, None)
  assert cli.main(["lm-eval", "--model_args", "path=x", "--tasks", "x"]) == cli.EXIT_BAD_INPUT
  assert capsys.readouterr().err == ("jaxlm lm-eval: needs the lmeval extra: pip install "
                                     "'jaxlm[lmeval]'\n")
