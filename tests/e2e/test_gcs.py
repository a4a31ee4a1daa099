"""Cloud Storage: a `gs://` workdir and a `gs://` TFDS data dir, end to end against a local
Cloud Storage emulator (tests/gcs_emulator.py), through the very clients a TPU VM uses (gcsfs,
tensorstore, array_record, google-cloud-storage). Every jaxlm command runs as a subprocess with
the emulator's environment, as on a TPU VM with credentials."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from helpers.cli import free_port, logged_losses, run_two_processes, train_args
from helpers.gcs_emulator import gcs_env

BUCKET = "jaxlm-test"
TINY = REPO / "configs/tiny.py"


@pytest.fixture(scope="module")
def gcs():
  """(environment variables that lead jaxlm to the emulator, a gcsfs filesystem on it)."""
  port = free_port()
  server = subprocess.Popen([sys.executable, str(REPO / "tests/helpers/gcs_emulator.py"), str(port),
                             BUCKET], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
  previous = {k: os.environ.get(k) for k in gcs_env(port)}
  try:
    assert server.stdout.readline().strip() == "ready"
    os.environ.update(gcs_env(port))  # for gcsfs here; the jaxlm processes get it passed
    import gcsfs  # noqa: PLC0415

    yield gcs_env(port), gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True)
  finally:
    server.kill()
    server.wait()
    for key, value in previous.items():
      if value is None:
        os.environ.pop(key, None)
      else:
        os.environ[key] = value


def _jaxlm(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
  result = subprocess.run([sys.executable, "-m", "jaxlm", *args], cwd=REPO,
                          env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)
  if check:
    assert result.returncode == 0, result.stderr[-3000:]
  return result


def _train(env: dict, workdir: str, steps: int, data_dir: str, cache: Path):
  return _jaxlm(env, "train", "--config", str(TINY), "--workdir", workdir, "--quiet",
                f"--config.steps={steps}", "--config.checkpoint_every=10",
                "--config.batch_size=8", "--config.seq_len=64", "--config.log_every=1",
                "--config.eval_every=0", "--config.eval_batches=1",
                "--config.data.vocab_size=512", "--config.data.source=tfds:three_books",
                # A schedule that does not depend on `steps`: 10 + 10 steps are then 20 steps.
                "--config.optimizer.schedule=constant", "--config.optimizer.warmup_steps=5",
                f"--config.data.tfds_data_dir={data_dir}", "--config.data.heldout_frac=0.34",
                f"--config.data.cache_dir={cache}")


def _events(text: str) -> list[dict]:
  return [json.loads(line) for line in text.splitlines()]


def test_gcs_workdir_trains_resumes_and_serves_like_a_local_one(gcs, tmp_path, shared_data, corpus):
  env, fs = gcs
  books = tmp_path / "books"
  books.mkdir()
  source = (corpus / "tinyshakespeare").glob("*.txt")
  text = next(source).read_text(encoding="utf-8")
  for i in range(3):  # three documents: two to train on, one held out
    (books / f"book{i}.txt").write_text(text[i * 20_000:(i + 1) * 20_000], encoding="utf-8")
  fs.put(str(books), f"{BUCKET}/books", recursive=True)
  data_dir = f"gs://{BUCKET}/tfds"
  # Text read from the bucket, prepared into the bucket.
  _jaxlm(env, "data", "prepare", "--source", f"text:gs://{BUCKET}/books/book*.txt", "--name",
         "three_books", "--data_dir", data_dir)
  assert fs.exists(f"{BUCKET}/tfds/three_books/1.0.0/dataset_info.json")

  # The same run in a local workdir (20 steps straight) and in gs:// (10, then resumed to 20).
  local = tmp_path / "local"
  _train(env, str(local), 20, data_dir, tmp_path / "cache")
  run = f"gs://{BUCKET}/runs/tiny"
  _train(env, run, 10, data_dir, tmp_path / "cache")
  assert fs.exists(f"{BUCKET}/runs/tiny/checkpoints/10")
  _train(env, run, 20, data_dir, tmp_path / "cache")

  names = {p.rsplit("/", 1)[1] for p in fs.ls(f"{BUCKET}/runs/tiny")}
  assert {"config.json", "tokenizer.json", "metrics.jsonl", "checkpoints",
          "tensorboard"} <= names
  assert fs.ls(f"{BUCKET}/runs/tiny/tensorboard"), "no TensorBoard event file"
  assert sorted(int(p.rsplit("/", 1)[1]) for p in fs.ls(f"{BUCKET}/runs/tiny/checkpoints")
                if p.rsplit("/", 1)[1].isdigit()) == [10, 20]
  metrics = fs.cat(f"{BUCKET}/runs/tiny/metrics.jsonl").decode()
  # One metrics.jsonl across the restart: the first run's lines, then the resumed run's.
  assert [e["resumed"] for e in _events(metrics) if e["split"] == "setup"] == [False, True]
  # Bit-exact, resume included.
  assert logged_losses(metrics) == logged_losses((local / "metrics.jsonl").read_text())
  assert fs.cat(f"{BUCKET}/runs/tiny/tokenizer.json") == (local / "tokenizer.json").read_bytes()

  # Inference and fine-tuning read the gs:// run as they read the local one.
  generate = ("generate", "--prompt", "KING", "--max_new_tokens", "12", "--temperature", "0")
  assert (_jaxlm(env, *generate, "--workdir", run).stdout ==
          _jaxlm(env, *generate, "--workdir", str(local)).stdout)
  _jaxlm(env, "finetune", "--init", run, "--task", "rte", "--glue_dir",
         str(shared_data / "glue"), "--workdir", f"gs://{BUCKET}/finetune/rte", "--seeds", "1",
         "--epochs", "1", "--max_train_examples", "64")
  results = json.loads(fs.cat(f"{BUCKET}/finetune/rte/results.json"))
  assert results["task"] == "rte" and results["init"] == run
  assert fs.exists(f"{BUCKET}/finetune/rte/predictions_validation_seed0.tsv")


def test_gcs_text_sources_expand_like_local_ones(gcs, tmp_path):
  from jaxlm.data.sources.text import DataError, read_documents, source_files  # noqa: PLC0415

  _, fs = gcs
  for name in ("a.txt", "sub/b.txt", "sub/c.md"):
    fs.pipe(f"{BUCKET}/texts/{name}", f"text of {name}".encode())
  root = f"gs://{BUCKET}/texts"
  every = [f"{root}/a.txt", f"{root}/sub/b.txt", f"{root}/sub/c.md"]
  assert [str(p) for p in source_files(f"text:{root}")] == every
  listed = source_files(f"text:{root}/sub/*.txt,{root}/a.txt")
  assert [str(p) for p in listed] == [every[1], every[0]]
  assert read_documents(source_files(f"text:{root}/sub/b.txt")) == {every[1]: "text of sub/b.txt"}
  with pytest.raises(DataError, match="'gs://jaxlm-test/texts/nope' does not exist"):
    source_files(f"text:{root}/nope")


def test_gcs_bad_paths_are_one_line_errors(gcs, tmp_path):
  env, fs = gcs
  missing = f"gs://{BUCKET}/no/such/run"
  result = _jaxlm(env, "train", "--config", str(TINY), "--workdir", str(tmp_path / "run"),
                  f"--init_from={missing}", check=False)
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
    f"jaxlm: error: --init_from {missing}: no such run directory")
  result = _jaxlm(env, "train", "--config", str(TINY), "--workdir", str(tmp_path / "run"),
                  f"--config.data.tokenizer=gs://{BUCKET}/no/tokenizer.json", check=False)
  assert result.returncode == 2
  assert "config.data.tokenizer='gs://jaxlm-test/no/tokenizer.json'" in result.stderr
  assert not fs.exists(f"{BUCKET}/no")


def test_two_processes_checkpoint_and_resume_together_in_gcs(gcs, corpus, tmp_path):
  """As on a multi-host TPU slice: every process writes its shards and its iterator position
  into one gs:// checkpoint, and both resume from it."""
  env, fs = gcs
  run = f"gs://{BUCKET}/runs/two-processes"
  run_two_processes(train_args(run, corpus, tmp_path / "cache", 6), env)
  checkpoints = f"{BUCKET}/runs/two-processes/checkpoints"
  assert sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{checkpoints}/6/data")
                if p.endswith(".json")) == ["process_0-of-2.json", "process_1-of-2.json"]
  run_two_processes(train_args(run, corpus, tmp_path / "cache", 9)  # extended: cosine re-plans
                    + ["--config.allow_schedule_change=true"], env)
  metrics = fs.cat(f"{BUCKET}/runs/two-processes/metrics.jsonl").decode()
  assert [e["resumed"] for e in _events(metrics) if e["split"] == "setup"] == [False, True]
  assert sorted(logged_losses(metrics)) == list(range(1, 10))
  assert {p.rsplit("/", 1)[1] for p in fs.ls(checkpoints)} >= {"3", "6", "9"}
