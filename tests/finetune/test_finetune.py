"""GLUE fine-tuning and the one-command comparison."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers.glue import toy_sst2
from helpers.model import tiny_config

from jaxlm import objectives
from jaxlm.data import tokenizer
from jaxlm.eval import inputs
from jaxlm.eval.tasks import glue, metrics
from jaxlm.finetune import trainer
from jaxlm.finetune.config import FinetuneConfig
from jaxlm.model import Classifier


@pytest.fixture(scope="module")
def tok():
  words = "the a film movie was is good great bad awful plot actor and but".split()
  return tokenizer.train_tokenizer("wordpiece", [" ".join(words * 20)], 200)


def test_pairs_are_encoded_bert_style_and_truncated_longest_first(tok):
  examples = glue.Examples(texts_a=["the film was good"], texts_b=["the plot is bad and awful"],
                           labels=np.array([1]), indices=np.array([0]))
  enc = inputs.encode(tok, examples, max_len=9)
  ids = tok.encode
  a = ids("the film was good", add_special_tokens=False).ids
  b = ids("the plot is bad and awful", add_special_tokens=False).ids
  # 9 - 3 specials = 6 tokens: the longer side shrinks first, to a=3, b=3.
  assert len(a) == 4 and len(b) == 6
  expected = [2] + a[:3] + [3] + b[:3] + [3]
  assert enc["tokens"][0].tolist() == expected
  assert enc["segment_ids"][0].tolist() == [1] * 9
  assert enc["token_types"][0].tolist() == [0] * 5 + [1] * 4  # [CLS] a [SEP] | b [SEP]
  single = inputs.encode(tok, glue.Examples(texts_a=["the film"], texts_b=None,
                                              labels=np.array([1]), indices=np.array([0])), 9)
  assert not single["token_types"].any()


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_prediction_batches_cut_padding_not_tokens_and_predict_as_at_full_width(tok, objective):
  """Prediction runs rows in order of length, each batch cut to a multiple of 16 positions: every
  row once, every real token kept, and each classifier's logits those of the full-width rows."""
  rng = np.random.default_rng(3)
  words = "the a film movie was is good great bad awful plot actor and but".split()
  texts = [" ".join(rng.choice(words, int(rng.integers(1, 40)))) for _ in range(45)]
  rows = inputs.encode(tok, glue.Examples(texts, None, np.zeros(45, int), np.arange(45)), 48)
  lengths = rows["segment_ids"].sum(1)
  assert lengths.min() < 16 and lengths.max() > 32  # all three widths occur
  seen, widths = [], set()
  record = objectives.get(objective)
  model = Classifier(tiny_config(objective, max_seq_len=48).model, record.classifier_attention,
                     record.classifier_readout, 2, 0.0, rngs=nnx.Rngs(0))
  full = np.asarray(model(jnp.asarray(rows["tokens"]), jnp.asarray(rows["segment_ids"])))
  for ids, batch in inputs.prediction_batches(rows, 8):
    width = batch["tokens"].shape[1]
    widths.add(width)
    assert width % inputs.WIDTH_MULTIPLE == 0 and lengths[ids].max() <= width
    assert len(batch["tokens"]) == 8 and batch["weights"].sum() == len(ids)
    np.testing.assert_array_equal(batch["tokens"][:len(ids)], rows["tokens"][ids, :width])
    logits = np.asarray(model(jnp.asarray(batch["tokens"]), jnp.asarray(batch["segment_ids"])))
    np.testing.assert_allclose(logits[:len(ids)], full[ids], rtol=1e-5, atol=1e-6)
    seen.extend(ids.tolist())
  assert sorted(seen) == list(range(45)) and widths == {16, 32, 48}


def test_clm_classifier_reads_the_last_real_token_and_mlm_reads_cls():
  cfg = tiny_config("clm")
  tokens = jnp.asarray(np.random.default_rng(0).integers(5, 200, (1, 8)), jnp.int32)
  seg = jnp.asarray([[1, 1, 1, 1, 1, 0, 0, 0]], jnp.int32)
  for objective, sees in (("clm", [1, 1, 1, 1, 1, 0, 0, 0]), ("mlm", [1, 1, 1, 1, 1, 0, 0, 0])):
    record = objectives.get(objective)
    model = Classifier(cfg.model, record.classifier_attention, record.classifier_readout, 2, 0.0,
                       rngs=nnx.Rngs(0))
    x = model.backbone.embed_tokens(tokens, jnp.arange(8)[None])

    def logit(x):
      spec_kind = "causal" if objective == "clm" else "bidirectional"
      from jaxlm.model.masks import MaskSpec
      h = model.backbone.encode(x, MaskSpec(spec_kind, seg), jnp.arange(8)[None])
      index = 4 if objective == "clm" else 0
      return model.head(h[:, index])[0, 0]

    grad = np.abs(np.asarray(jax.grad(logit)(x))).sum(-1)[0]
    assert ((grad > 0).astype(int).tolist() == sees), objective
    direct = model(tokens, seg)[0, 0]
    assert float(direct) == pytest.approx(float(logit(x)), rel=1e-5)


@pytest.mark.parametrize("attention", ["bidirectional", "causal"])
def test_mean_readout_averages_the_real_tokens_and_ignores_padding(attention):
  cfg = tiny_config("mlm")
  model = Classifier(cfg.model, attention, "mean", 2, 0.0, rngs=nnx.Rngs(0))
  tokens = np.random.default_rng(1).integers(5, 200, (1, 8)).astype(np.int32)
  seg = np.asarray([[1, 1, 1, 1, 1, 0, 0, 0]], np.int32)
  other = tokens.copy()
  other[0, 5:] = 7  # other padding tokens: no effect
  a, b = model(jnp.asarray(tokens), jnp.asarray(seg)), model(jnp.asarray(other), jnp.asarray(seg))
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
  from jaxlm.model.masks import MaskSpec  # noqa: PLC0415
  h = model.backbone(jnp.asarray(tokens), MaskSpec(attention, jnp.asarray(seg)))
  want = model.head(h[:, :5].mean(1))
  np.testing.assert_allclose(np.asarray(a), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_finetuning_learns_a_learnable_task_and_writes_recomputable_results(tok, tmp_path):
  glue_dir = toy_sst2(tmp_path / "glue")
  config = tiny_config("mlm")
  recipe = FinetuneConfig(lr=3e-3, epochs=4, seeds=2, batch_size=16, eval_batch_size=32)
  results = trainer.run(config, recipe, "sst2", str(glue_dir), tmp_path / "out", None, tok,
                         init="none")
  accuracy = results["summary"]["validation"]["accuracy"]
  assert accuracy["min"] > 90.0, results["seeds"]
  saved = json.loads((tmp_path / "out/results.json").read_text())
  assert [s["seed"] for s in saved["seeds"]] == [0, 1]
  for seed in (0, 1):
    indices, predictions, labels = metrics.read_predictions(
      tmp_path / f"out/predictions_validation_seed{seed}.tsv", task="sst2")
    recomputed = metrics.compute_metrics("sst2", predictions, labels)
    assert recomputed["accuracy"] == pytest.approx(saved["seeds"][seed]["metrics"]["validation"]
                                                   ["accuracy"])
  values = [s["metrics"]["validation"]["accuracy"] for s in saved["seeds"]]
  assert saved["summary"]["validation"]["accuracy"]["median"] == pytest.approx(np.median(values))
  # The best seed's classifier is kept and predicts what it predicted in fine-tuning.
  from jaxlm.eval import tasks  # noqa: PLC0415
  from jaxlm.finetune import saved as saved_classifier  # noqa: PLC0415
  best = max(saved["seeds"], key=lambda s: s["metrics"]["validation"]["score"])
  assert saved["classifier"] == {"folder": "classifier", "seed": best["seed"]}
  kept = saved_classifier.load(tmp_path / "out")
  assert kept.meta["seed"] == best["seed"] and kept.meta["task"] == "sst2"
  dev = tasks.get("sst2", "finetune").read("validation", str(glue_dir), 0)
  _, predictions, _ = metrics.read_predictions(
    tmp_path / f"out/predictions_validation_seed{best['seed']}.tsv", task="sst2")
  np.testing.assert_array_equal(kept.predict(dev.texts_a).argmax(-1), predictions)


def test_the_step_compiles_once_per_structure_and_keeps_the_parameters_sharded(tok, tmp_path,
                                                                              monkeypatch):
  """Every seed's state enters the step with the shardings it leaves with: one compilation for
  all seeds and for every trainer of the same structure (it was two per trainer: the first
  call's inputs differed from the outputs XLA chose), and on a data x fsdp x tensor mesh the
  parameters stay sharded by their logical axes."""
  import dataclasses  # noqa: PLC0415

  import tqdm  # noqa: PLC0415

  from jaxlm import sharding  # noqa: PLC0415
  from jaxlm.config import MeshConfig  # noqa: PLC0415
  from jaxlm.eval import tasks  # noqa: PLC0415

  monkeypatch.setattr(trainer, "_COMPILED", {})  # no step another test compiled
  config = dataclasses.replace(tiny_config("mlm"), mesh=MeshConfig(data=2, fsdp=2, tensor=2))
  mesh = sharding.make_mesh(config.mesh)
  task = tasks.get("sst2", "finetune")
  train_ex = task.read("train", str(toy_sst2(tmp_path / "glue")), 64)
  recipe = FinetuneConfig(epochs=1, seeds=2, batch_size=16, eval_batch_size=32).validate()
  tt = trainer.TaskTrainer(config, recipe, task, mesh, len(train_ex))
  train = {**inputs.encode(tok, train_ex, 16), "labels": train_ex.labels}
  with tqdm.tqdm(disable=True) as bar:
    for seed in (0, 1):
      _, params = tt.run_seed(train, {}, seed, None, bar)
  # A second trainer of the same structure (the untrained arm beside a pre-trained one) reuses
  # the compiled step; another read-out and attention (a CLM's) compiles its own.
  again = trainer.TaskTrainer(config, recipe, task, mesh, len(train_ex))
  with tqdm.tqdm(disable=True) as bar:
    again.run_seed(train, {}, 2, None, bar)
  assert again.step is tt.step and again.predict is tt.predict
  assert tt.step._cache_size() == 1
  causal = trainer.TaskTrainer(dataclasses.replace(config, objective="clm"), recipe, task, mesh,
                               len(train_ex))
  assert causal.step is not tt.step
  leaves, wanted = jax.tree.leaves(params), jax.tree.leaves(tt.param_sh)
  assert len(leaves) == len(wanted)
  assert any(len(s.spec) and s.spec != jax.sharding.PartitionSpec() for s in wanted)
  for leaf, want in zip(leaves, wanted):
    assert leaf.sharding.is_equivalent_to(want, leaf.ndim), (leaf.sharding, want)


def test_a_pretrained_backbone_must_load_whole():
  """Every backbone parameter of the model comes from the pre-trained run; one it lacks (here
  a token-type table the run never had) is an error, never a silently random weight."""
  from flax import nnx

  from jaxlm.config import ConfigError
  from jaxlm.objectives.build import build_model, merge_params

  config = tiny_config("mlm")
  fresh = nnx.state(build_model(config, seed=0))
  loaded = nnx.state(build_model(config, seed=1))
  merged = merge_params(fresh, loaded, require="backbone")
  for a, b in zip(jax.tree.leaves(merged), jax.tree.leaves(loaded)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with_types = nnx.state(build_model(tiny_config("mlm", type_vocab_size=2), seed=0))
  with pytest.raises(ConfigError, match=r"lack 1 of the model's backbone parameters "
                                        r"\(first: \['backbone'\]\['type_embed'\]"):
    merge_params(with_types, loaded, require="backbone")


def test_a_seed_predicting_one_class_is_marked_failed():
  from jaxlm.finetune.trainer import collapsed
  assert collapsed({"dev": np.array([[2.0, 1.0], [3.0, 0.0]]), "test": np.array([[1.0, 0.0]])})
  assert not collapsed({"dev": np.array([[2.0, 1.0], [0.0, 3.0]])})
