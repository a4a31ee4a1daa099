"""Fine-tuned classifiers through `jaxlm export`: a classifier kept by `jaxlm finetune` loads as
its transformers sequence class with no missing or unexpected tensors, and its exported tokenizer
plus model give the classifier's logits (`SavedClassifier.predict`) on right-padded single texts
and pairs. Causal (clm) classifiers: GPT2ForSequenceClassification (learned positions) or
GPTNeoXForSequenceClassification (RoPE), the head bias folded into the final LayerNorm's.
Bidirectional ones: BERT, RoBERTa-PreLayerNorm, XLM-R XL and ESM sequence classifiers, their
dense + tanh pooler made the identity. What no class reproduces is refused in one line: the mean
read-out, a pair task's distinct token-type row 1 in a class without token types, a head bias its
weight cannot give back, ESM with tanh GELU."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from flax import nnx  # noqa: E402
from helpers.hf import TEXTS, TOL, max_diff, perturb_jaxlm, tiny_config  # noqa: E402

from jaxlm import cli  # noqa: E402
from jaxlm.config import DataError  # noqa: E402
from jaxlm.data.tokenizer import train_tokenizer  # noqa: E402
from jaxlm.finetune import saved  # noqa: E402
from jaxlm.interop import hf_classifier  # noqa: E402
from jaxlm.model import Classifier  # noqa: E402

MAX_LEN = 24
# Of different lengths, so rows pad differently; (a, b) pairs for pair tasks.
SINGLES = ["the cat sat", "a dog ran in the park on a tree", "the bird sang on the mat",
           "a cat"]
PAIRS = [("the cat sat", "a dog ran in the park"), ("the bird", "sang on a tree"),
         ("a dog ran in the park on the mat", "the cat"), ("the mat", "a bird sang")]


@pytest.fixture(scope="module")
def tok():
  return train_tokenizer("bpe", TEXTS, 300)


def _kept(workdir, config, tok, task: str, num_labels: int, attention: str = "causal",
          readout: str = "last", seed: int = 0, same_type_rows: bool = False) -> Classifier:
  """A perturbed random classifier (nonzero head bias, random final LayerNorm bias), kept in
  `workdir` as `jaxlm finetune` keeps its best seed's."""
  model = Classifier(config.model, attention, readout, num_labels, 0.0,
                     rngs=nnx.Rngs(params=seed))
  perturb_jaxlm(model, seed)
  model.head.bias.set_value(model.head.bias.get_value() + 0.5)
  if same_type_rows:  # as a model whose type table never learned a row of its own for b
    table = model.backbone.type_embed.embedding
    table.set_value(table.get_value().at[1].set(table.get_value()[0]))
  meta = {"task": task, "num_labels": num_labels, "attention": attention, "readout": readout,
          "max_seq_len": MAX_LEN, "seed": seed, "scores": {}}
  saved.save(workdir, nnx.state(model), config, tok, meta)
  return model


def _export(workdir, out, capsys) -> tuple[torch.nn.Module, transformers.PreTrainedTokenizerBase]:
  """`jaxlm export` of the kept classifier: the model (every tensor from the export) and the
  tokenizer as transformers reads them."""
  assert cli.main(["export", "--workdir", str(workdir), "--out", str(out)]) == 0
  assert "classifier" in capsys.readouterr().out
  model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
    out, output_loading_info=True)
  assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
  return model.eval(), transformers.AutoTokenizer.from_pretrained(out)


def _torch_logits(model, hf_tok, texts, typed: bool = False) -> np.ndarray:
  """Logits of right-padded rows under an attention mask, encoded by the exported tokenizer;
  `typed`: whether it passes token types (never to GPT-2, which would misread them)."""
  firsts = [t[0] if isinstance(t, tuple) else t for t in texts]
  seconds = [t[1] for t in texts] if isinstance(texts[0], tuple) else None
  enc = hf_tok(firsts, seconds, padding=True, return_tensors="pt")
  assert set(enc) == {"input_ids", "attention_mask"} | ({"token_type_ids"} if typed else set())
  assert (enc["attention_mask"][:, 0] == 1).all()  # padded on the right
  with torch.no_grad():
    return model(**enc).logits.float().numpy()


def _assert_same_ids(hf_tok, kept: saved.SavedClassifier, texts) -> None:
  """The exported tokenizer writes the rows fine-tuning read: [CLS] a [SEP] (b [SEP])."""
  for text in texts:
    a, b = text if isinstance(text, tuple) else (text, None)
    ours = kept.tokenizer
    ids = [ours.token_to_id("[CLS]")] + ours.encode(a, add_special_tokens=False).ids + [
      ours.token_to_id("[SEP]")]
    if b is not None:
      ids += ours.encode(b, add_special_tokens=False).ids + [ours.token_to_id("[SEP]")]
    assert hf_tok(a, b)["input_ids"] == ids


@pytest.mark.parametrize("position, task, labels, type_vocab_size, arch", [
  # MNLI: 3 labels, pairs, named labels; GPT-2 with learned positions.
  ("learned", "mnli", ("entailment", "neutral", "contradiction"), 0,
   "GPT2ForSequenceClassification"),
  # STS-B: regression (1 output), pairs, on a type table whose rows 0 and 1 agree.
  ("rope", "stsb", (), 2, "GPTNeoXForSequenceClassification"),
  # SST-2: single texts; a type table whose row 1 differs is never read.
  ("rope", "sst2", ("negative", "positive"), 2, "GPTNeoXForSequenceClassification"),
])
def test_causal_classifier_exports_with_its_logits(position, task, labels, type_vocab_size, arch,
                                                   tok, tmp_path, capsys):
  config = tiny_config("clm", norm="pre", position=position, vocab_size=384,
                       type_vocab_size=type_vocab_size, scan_layers=position == "rope")
  num_labels = max(len(labels), 1)
  pairs = task != "sst2"
  _kept(tmp_path / "ft", config, tok, task, num_labels, seed=7,
        same_type_rows=pairs and type_vocab_size > 0)
  hf_model, hf_tok = _export(tmp_path / "ft", tmp_path / "out", capsys)
  assert type(hf_model).__name__ == arch
  hf = hf_model.config
  assert hf.pad_token_id == tok.token_to_id("[PAD]") and hf.num_labels == num_labels
  assert hf.problem_type == ("regression" if num_labels == 1 else "single_label_classification")
  if labels:
    assert [hf.id2label[i] for i in range(num_labels)] == list(labels)
  kept = saved.load(tmp_path / "ft")
  batches = ([PAIRS, PAIRS[:1]] if pairs else []) + [SINGLES, SINGLES[1:2]]
  diffs = []
  for texts in batches:
    _assert_same_ids(hf_tok, kept, texts)
    ours = kept.predict(texts)
    assert ours.shape == (len(texts), num_labels)
    diffs.append(max_diff(_torch_logits(hf_model, hf_tok, texts), ours))
  assert max(diffs) < TOL, diffs
  print(f"{arch} {task}: max |diff| {max(diffs):.2e}")


@pytest.mark.parametrize("model, task, labels, type_vocab_size, arch", [
  # BERT (post-LN) on MNLI pairs whose token-type row 1 is its own: read as BERT reads it.
  (dict(norm="post"), "mnli", ("entailment", "neutral", "contradiction"), 2,
   "BertForSequenceClassification"),
  # Pre-LN with an embedding LayerNorm, tanh GELU (no MLM head, so RoBERTa's exact-GELU head
  # does not matter), RTE pairs with token types.
  (dict(norm="pre", embed_norm=True, activation="gelu_tanh"), "rte", ("entailment", "not"), 2,
   "RobertaPreLayerNormForSequenceClassification"),
  # Pre-LN without one, no token types, STS-B regression.
  (dict(norm="pre", embed_norm=False), "stsb", (), 0, "XLMRobertaXLForSequenceClassification"),
  # RoPE (ESM), single texts, a type table ESM folds into its embeddings.
  (dict(norm="pre", position="rope", activation="gelu_exact"), "sst2", ("negative", "positive"),
   2, "EsmForSequenceClassification"),
])
def test_bidirectional_classifier_exports_with_its_logits(model, task, labels, type_vocab_size,
                                                          arch, tok, tmp_path, capsys):
  config = tiny_config("mlm", vocab_size=384, type_vocab_size=type_vocab_size, **model)
  num_labels = max(len(labels), 1)
  pairs = task != "sst2"
  _kept(tmp_path / "ft", config, tok, task, num_labels, attention="bidirectional",
        readout="first", seed=3)
  hf_model, hf_tok = _export(tmp_path / "ft", tmp_path / "out", capsys)
  assert type(hf_model).__name__ == arch
  assert hf_model.config.problem_type == ("regression" if num_labels == 1
                                          else "single_label_classification")
  kept = saved.load(tmp_path / "ft")
  typed = type_vocab_size == 2 and arch != "EsmForSequenceClassification"
  diffs = []
  for texts in ([PAIRS, PAIRS[:1]] if pairs else []) + [SINGLES, SINGLES[1:2]]:
    _assert_same_ids(hf_tok, kept, texts)
    diffs.append(max_diff(_torch_logits(hf_model, hf_tok, texts, typed), kept.predict(texts)))
  assert max(diffs) < TOL, diffs
  print(f"{arch} {task}: max |diff| {max(diffs):.2e}")


def test_pooler_is_the_identity_to_float32():
  """2^-k times the largest final state a LayerNorm can give stays where tanh(x) == x in float32,
  and the logits' scale comes back exactly through the power-of-two output weight."""
  config = tiny_config("mlm", norm="pre", vocab_size=384)
  D = config.model.embed_dim
  scale, bias = np.full(D, 3.0, np.float32), np.full(D, 0.5, np.float32)
  k = hf_classifier._pooler_shift({"backbone.norm.scale": scale, "backbone.norm.bias": bias},
                                  config)
  bound = 3.0 * np.sqrt(D - 1) + 0.5
  assert bound * 2.0 ** -k <= 2.0 ** -hf_classifier.TANH_BITS < bound * 2.0 ** -(k - 1)
  h = np.linspace(-bound, bound, 10001, dtype=np.float32)  # every state the norm can give
  pooled = torch.tanh(torch.from_numpy(h * np.float32(2.0 ** -k))).numpy() * np.float32(2.0 ** k)
  assert np.max(np.abs(pooled - h) / np.maximum(np.abs(h), 1e-30)) <= np.finfo(np.float32).eps


def test_esm_classifier_refusals_name_their_reason(tok, tmp_path):
  """ESM's MLP is exact GELU whatever the config says, and it has no token-type table."""
  meta = {"task": "sst2", "num_labels": 2, "attention": "bidirectional", "readout": "first",
          "max_seq_len": MAX_LEN}
  config = tiny_config("mlm", norm="pre", position="rope", vocab_size=384)  # tanh GELU
  model = Classifier(config.model, "bidirectional", "first", 2, 0.0, rngs=nnx.Rngs(params=0))
  assert "exact GELU" in _refusal(tmp_path, tok, config, meta, model, pairs=False)
  config = tiny_config("mlm", norm="pre", position="rope", activation="gelu_exact",
                       vocab_size=384, type_vocab_size=2)
  model = Classifier(config.model, "bidirectional", "first", 2, 0.0, rngs=nnx.Rngs(params=0))
  perturb_jaxlm(model, 0)
  why = _refusal(tmp_path, tok, config, {**meta, "task": "rte"}, model)
  assert "token-type row 1" in why and "EsmForSequenceClassification" in why, why
  model.readout = "mean"
  assert "readout" in _refusal(tmp_path, tok, config, {**meta, "readout": "mean"}, model)


def _refusal(tmp_path, tok, config, meta: dict, model: Classifier, pairs: bool = True) -> str:
  with pytest.raises(DataError) as e:
    hf_classifier.classifier_to_hf(config, nnx.state(model), meta, tmp_path / "out", tok,
                               pairs=pairs)
  assert "\n" not in str(e.value)
  assert not (tmp_path / "out" / "model.safetensors").exists()
  return str(e.value)


def _meta(task: str, num_labels: int, readout: str = "last") -> dict:
  return {"task": task, "num_labels": num_labels, "attention": "causal", "readout": readout,
          "max_seq_len": MAX_LEN}


def test_mean_readout_and_distinct_pair_type_rows_are_refused(tok, tmp_path):
  config = tiny_config("clm", norm="pre", vocab_size=384, type_vocab_size=2)
  model = Classifier(config.model, "causal", "mean", 2, 0.0, rngs=nnx.Rngs(params=0))
  perturb_jaxlm(model, 0)
  assert "config.finetune.readout" in _refusal(tmp_path, tok, config, _meta("rte", 2, "mean"),
                                               model)
  model.readout = "last"
  why = _refusal(tmp_path, tok, config, _meta("rte", 2), model)
  assert "token-type row 1" in why
  hf_classifier.classifier_to_hf(config, nnx.state(model), _meta("sst2", 2), tmp_path / "single",
                             tok, pairs=False)  # single texts never read row 1


def test_head_bias_folds_only_where_its_weight_gives_it_back(tok, tmp_path):
  config = tiny_config("clm", norm="pre", vocab_size=384)
  model = Classifier(config.model, "causal", "last", 3, 0.0, rngs=nnx.Rngs(params=0))
  perturb_jaxlm(model, 0)
  # Dyadic values, so the sum below is exact in float32: W's rows are truly dependent.
  kernel_DxC = np.round(np.asarray(model.head.kernel.get_value()) * 1024) / 1024
  kernel_DxC[:, 2] = kernel_DxC[:, 0] + kernel_DxC[:, 1]
  model.head.kernel.set_value(kernel_DxC)
  model.head.bias.set_value(np.asarray([1.0, 1.0, 2.0], np.float32))  # b = W x for some x
  hf_classifier.classifier_to_hf(config, nnx.state(model), _meta("mnli", 3), tmp_path / "ok", tok)
  weights = json.loads((tmp_path / "ok" / "config.json").read_text())
  assert weights["architectures"] == ["GPT2ForSequenceClassification"]
  model.head.bias.set_value(np.asarray([1.0, 1.0, 5.0], np.float32))  # out of W's range
  assert "does not fold into the final LayerNorm's" in _refusal(tmp_path, tok, config,
                                                                _meta("mnli", 3), model)
