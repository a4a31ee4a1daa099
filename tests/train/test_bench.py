"""`jaxlm.bench` and benchmarks/peers.py: self-consistent numbers, a step that compiles once."""

import json
import math
import os
import subprocess
import sys

import jax
import pytest
from conftest import REPO

from jaxlm.config import load_config
from jaxlm.train.bench import bench

TINY = {"batch_size": "8", "seq_len": "32", "data.vocab_size": "512", "model.embed_dim": "64",
        "model.num_heads": "2", "model.mlp_dim": "128", "model.num_layers": "2"}
FIELDS = ("config", "device_kind", "backend", "jax_version", "device_count", "batch", "seq",
          "objective", "step_ms", "tokens_per_s", "tflops_per_s", "mfu", "peak_memory_gb",
          "compile_s")


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_bench_fields_and_consistency(objective):
  config = load_config(REPO / "configs/tiny.py", {**TINY, "objective": objective})
  result = bench(config, steps=3, warmup=2, name="configs/tiny.py")
  json.dumps(result)  # JSON-able as it is
  assert set(FIELDS) <= set(result)
  assert (result["config"], result["objective"], result["batch"], result["seq"]) == (
    "configs/tiny.py", objective, 8, 32)
  assert result["backend"] == "cpu" and result["device_count"] == jax.device_count() == 8
  assert result["mfu"] is None and result["peak_tflops"] is None  # no datasheet peak for a CPU
  assert result["tokens_per_s"] > 0 and result["tflops_per_s"] > 0 and result["compile_s"] > 0
  expected = result["batch"] * result["seq"] / (result["step_ms"] / 1000)
  assert result["tokens_per_s"] == pytest.approx(expected, rel=0.01)
  assert result["tflops_per_s"] == pytest.approx(
    result["tokens_per_s"] * result["flops_per_token"] / 1e12 / 8, rel=1e-6)
  if result["step_compilations"] is not None:  # jax's private _cache_size() was reachable
    assert result["step_compilations"] == 1
  assert math.isfinite(result["final_loss"])


def test_bench_rejects_a_batch_that_does_not_split():
  config = load_config(REPO / "configs/tiny.py", {**TINY, "batch_size": "4"})
  with pytest.raises(ValueError, match="split evenly over data\\*fsdp=8"):
    bench(config, steps=1, warmup=1)


def test_peers_smoke_on_cpu():
  env = dict(os.environ)
  # conftest's eight fake devices would not divide --tiny's batch of 4; peers.py runs on one.
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
    "--xla_force_host_platform_device_count=8", "").strip()
  done = subprocess.run(
    [sys.executable, "benchmarks/peers.py", "--device", "cpu", "--tiny", "--steps", "2",
     "--warmup", "1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  lines = [json.loads(line) for line in done.stdout.splitlines()]
  peers = [line for line in lines if "peer" in line]
  ours = [line for line in lines if "jaxlm_for" in line]
  ratios = [line for line in lines if "ratio" in line]
  assert [p["peer"] for p in peers] == ["hf_gpt2", "hf_bert"]
  assert [r["config"] for r in ours] == ["configs/gpt2_124m.py", "configs/bert_base.py"]
  assert [r["ratio"] for r in ratios] == ["jaxlm/hf_gpt2", "jaxlm/hf_bert"]
  for peer, mine in zip(peers, ours):
    assert peer["tokens_per_s"] > 0 and mine["tokens_per_s"] > 0
    assert (peer["batch"], peer["seq"]) == (mine["batch"], mine["seq"]) == (4, 128)
    assert peer["attention"] == "sdpa" and not peer["compile"] and not peer["autocast_bf16"]
    assert mine["dtype"] == "float32"
    assert any("torch.compile off on cpu" in note for note in peer["notes"])
  # Built from the same config: the same parameters (the BERT config has HF's two token types).
  assert peers[0]["params"] == ours[0]["params"]
  assert peers[1]["params"] == ours[1]["params"]
