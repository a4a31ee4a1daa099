"""Every shipped config builds; overrides parse by type; bad keys and values fail in one line."""

import dataclasses
import re
import subprocess
import sys

import pytest
from conftest import REPO

from jaxlm import preflight
from jaxlm.config import (
  Config,
  ConfigError,
  DataConfig,
  MeshConfig,
  MLMConfig,
  ModelConfig,
  OptimizerConfig,
  apply_override,
  load_config,
  named_configs,
)
from jaxlm.objectives.build import abstract_model, count_params
from jaxlm.studies import compare, scale
from jaxlm.studies.config import CompareConfig, ScaleConfig
from jaxlm.train.bench import with_synthetic_tokenizer

# Every config that ships, in every folder (configs/ and its compare/, scale/ subfolders).
SHIPPED = named_configs()
CONFIGS = [REPO / "configs" / f"{name}.py" for name in SHIPPED if "/" not in name]
STUDIES = {"compare": (CompareConfig, compare.check), "scale": (ScaleConfig, scale.check)}

# Parameter counts the shipped shapes must have (tied embeddings, position table included).
EXPECTED_PARAMS = {
  # GPT-2 small (124,439,808 at V=50257) with the vocabulary padded to 50304: + 47 * 768.
  "gpt2_124m.py": 124_475_904,
  # HF BertForMaskedLM bert-base (109,514,298 at V=30522, token-type embeddings included), V
  # padded to 30528 (+ 6 * 769).
  "bert_base.py": 109_518_912,
}


def test_every_shipped_config_file_is_named():
  files = {str(p.relative_to(REPO / "configs").with_suffix(""))
           for p in (REPO / "configs").rglob("*.py") if p.stem not in ("__init__", "base")}
  assert files == set(SHIPPED) and len(SHIPPED) >= 9


@pytest.mark.parametrize("name", [n for n in SHIPPED if "/" in n])
def test_every_study_config_parses_and_passes_preflight(name, monkeypatch):
  monkeypatch.setenv("GLUE_DIR", str(REPO))  # GLUE configs need a data dir to be named
  expected, check = STUDIES[name.split("/")[0]]
  config = load_config(name, expected=expected)
  check(config)
  assert isinstance(config.pretrain, Config) and config.objectives


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_builds(path):
  config, _ = with_synthetic_tokenizer(load_config(path))  # the table training would build
  _, params = abstract_model(config)
  n = count_params(params)
  assert n > 0
  if path.name in EXPECTED_PARAMS:
    assert n == EXPECTED_PARAMS[path.name]


def test_nested_overrides_are_typed():
  config = load_config(REPO / "configs/tiny.py", {
    "model.num_layers": "3", "optimizer.lr": "3e-4", "objective": "mlm",
    "model.scan_layers": "false", "mesh.data": "-1"})
  assert config.model.num_layers == 3 and config.optimizer.lr == 3e-4
  assert config.objective == "mlm" and config.model.scan_layers is False


@pytest.mark.parametrize("key, value, message", [
  ("model.nope", "1", "config.model.nope: unknown key; allowed in config.model: vocab_size"),
  ("nope.x", "1", "config.nope: unknown key"),
  ("objective", "bert",
   "config.objective='bert': allowed values are clm, mlm, mlm_nsp, prefix_lm"),
  ("mlm.masking", "wwm", "config.mlm.masking='wwm': allowed values are token, whole_word, span"),
  ("mlm.span_p", "0", "config.mlm.span_p=0.0: must be in (0, 1]"),
  ("model.type_vocab_size", "-1", "config.model.type_vocab_size=-1: must be >= 0"),
  ("steps", "ten", "config.steps='ten': expected int"),
  ("steps", "0", "config.steps=0: must be a positive integer"),
  ("model.num_heads", "5", "config.model.num_heads=5: must divide model.embed_dim=128"),
  ("seq_len", "512", "config.seq_len=512: exceeds model.max_seq_len=128"),
  ("mlm.mask_rate", "1.5", "config.mlm.mask_rate=1.5: must be in (0, 1)"),
  ("mesh.data", "0", "config.mesh.data=0: must be a positive integer or -1"),
  ("data.source", "s3://x", "config.data.source='s3://x': unknown scheme"),
  ("model", "3", "config.model: is a group"),
  ("model.loss_chunk", "-1", "config.model.loss_chunk=-1: must be >= 0 (0: no chunks)"),
  ("model.attention_dropout", "1.0", "config.model.attention_dropout=1.0: must be in [0, 1)"),
  ("optimizer.mu_dtype", "float16",
   "config.optimizer.mu_dtype='float16': allowed values are float32, bfloat16"),
])
def test_bad_overrides_name_the_key_and_what_is_allowed(key, value, message):
  with pytest.raises(ConfigError) as err:
    preflight.pretrain_config(load_config(REPO / "configs/tiny.py", {key: value}))
  assert message in str(err.value)
  assert "\n" not in str(err.value)


def test_objective_defaults_are_filled_in_unless_pinned():
  config = preflight.pretrain_config(load_config("tiny", {"objective": "mlm_nsp"}))
  assert config.model.type_vocab_size == 2
  assert preflight.pretrain_config(load_config("tiny")).model.type_vocab_size == 0
  with pytest.raises(ConfigError, match="config.model.type_vocab_size=1: objective=mlm_nsp "
                                        "reads 2 token types"):
    preflight.pretrain_config(load_config("tiny", {"objective": "mlm_nsp",
                                                   "model.type_vocab_size": "1"}))


def test_loading_a_study_config_imports_nothing_heavy():
  code = ("import sys; from jaxlm.config import load_config; "
          "from jaxlm.studies.config import CompareConfig, ScaleConfig; "
          "load_config('compare/tiny', expected=CompareConfig); "
          "load_config('scale/gpu', expected=ScaleConfig); "
          "print(sorted(m for m in ('jax', 'flax', 'grain', 'orbax', 'matplotlib', 'optax') "
          "if m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
  assert out.stdout.strip() == "[]", out.stderr


def test_list_fields_parse_from_commas():
  config = load_config("scale/tiny", {"objectives": "mlm, clm,prefix_lm", "depths": "1,2",
                                      "tokens": "1e6,2e6", "tasks": ""}, expected=ScaleConfig)
  assert config.objectives == ("mlm", "clm", "prefix_lm")
  assert config.depths == (1, 2) and config.tokens == (1_000_000, 2_000_000)
  assert config.tasks == ()


def _jaxlm(*args, cwd=REPO):
  return subprocess.run([sys.executable, "-m", "jaxlm", *args], cwd=cwd, capture_output=True,
                        text=True, timeout=300)


def test_cli_rejects_bad_input_with_one_line_and_exit_2(tmp_path):
  cases = [
    (["--config.model.num_layerz=2"], "config.model.num_layerz: unknown key"),
    (["--config.mesh.data=3"], "config.mesh=[3, 1, 1]: data*fsdp*tensor=3 but 8 devices"),
    (["--config.data.source=text:/no/such/dir"], "'/no/such/dir' does not exist"),
    (["--config.batch_size=12", "--config.mesh.data=8"], "must split evenly over data*fsdp=8"),
  ]
  env_note = "XLA_FLAGS from conftest: 8 CPU devices"
  for extra, message in cases:
    workdir = tmp_path / "run"
    result = _jaxlm("train", "--config", "configs/tiny.py", "--workdir", str(workdir), *extra)
    assert result.returncode == 2, (extra, result.stderr, env_note)
    lines = [line for line in result.stderr.splitlines() if line.startswith("jaxlm: error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (workdir / "checkpoints").exists()
  result = _jaxlm("train", "--config", str(tmp_path / "missing.py"), "--workdir", "x")
  assert result.returncode == 2 and "no such config file" in result.stderr


def test_configs_are_frozen_and_overrides_make_new_ones():
  config = load_config("tiny")
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.model.num_layers = 3
  deeper = apply_override(config, "model.num_layers", "3")
  assert deeper.model.num_layers == 3 and config.model.num_layers == 2
  assert deeper.optimizer is config.optimizer  # untouched groups are shared, not copied
  assert hash(deeper) != hash(config) and deeper == apply_override(config, "model.num_layers", "3")


@pytest.mark.parametrize("group, message", [
  (ModelConfig(embed_dim=96, num_heads=5), "config.model.num_heads=5: must divide"),
  (ModelConfig(vocab_size=-1), "config.model.vocab_size=-1: must be >= 0"),
  (MLMConfig(mask_rate=1.0), "config.mlm.mask_rate=1.0: must be in (0, 1)"),
  (OptimizerConfig(lr=float("inf")), "config.optimizer.lr=inf"),
  (MeshConfig(data=-1, fsdp=-1), "config.mesh: at most one of"),
  (DataConfig(vocab_size=0), "config.data.vocab_size=0: must be a positive integer"),
])
def test_each_group_validates_itself(group, message):
  with pytest.raises(ConfigError, match=re.escape(message)):
    group.validate()


def test_embedding_rows_fit_the_tokenizer_unless_pinned():
  config = load_config("tiny")
  assert config.embedding_rows(2000) == 2048 and config.embedding_rows(2048) == 2048
  pinned = apply_override(config, "model.vocab_size", "4000")
  assert pinned.embedding_rows(2000) == 4000
  with pytest.raises(ConfigError, match="config.model.vocab_size=4000: smaller than the "
                                        "tokenizer's 4001 tokens"):
    pinned.embedding_rows(4001)


def test_shipped_configs_load_from_a_checkout_that_is_not_installed(tmp_path):
  """No site-packages (-S): only the checkout is importable, as on a machine that receives a
  copy of the repository; loading a config needs nothing beyond the standard library."""
  code = ("import sys; sys.path.insert(0, sys.argv[1]); from jaxlm.config import load_config; "
          "from jaxlm.studies.config import CompareConfig; "
          "print(load_config('tiny').steps, load_config('compare/tiny', "
          "expected=CompareConfig).objectives)")
  out = subprocess.run([sys.executable, "-S", "-c", code, str(REPO)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
  assert out.stdout.split("\n")[0] == "300 ('mlm', 'clm')", out.stderr
