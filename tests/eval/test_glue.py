"""GLUE tasks: the task table, TSV and TFDS readers, metrics, prediction files."""

import math
import tempfile
import warnings

import numpy as np
import pytest

from jaxlm.config import ConfigError, DataError
from jaxlm.eval.tasks import glue, metrics

# (task, split) -> examples, as in ../shared/data/README.md and the official GLUE sizes.
SIZES = {("sst2", "train"): 67_349, ("sst2", "validation"): 872,
         ("cola", "train"): 8_551, ("cola", "validation"): 1_043,
         ("rte", "train"): 2_490, ("rte", "validation"): 277,
         ("wnli", "train"): 635, ("wnli", "validation"): 71,
         ("qnli", "validation"): 5_463}


def write_tsv(path, lines, bom=False):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(("\ufeff" if bom else "").encode() + "".join(line + "\n" for line in lines).encode())
  return path


def test_task_table_is_consistent():
  assert list(glue.TASKS) == ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]
  for task in glue.TASKS.values():
    assert set(task.text_columns) | {task.label_column} <= set(task.columns), task.name
    assert len(task.text_columns) == len(task.tfds_text_features) in (1, 2)
    assert len(task.label_meanings) == len(task.label_names)
    assert task.splits[0] == "train" and task.eval_splits == task.splits[1:]
    assert glue.get_task(task.dir_name.lower()) is glue.get_task(task.name) is task
  assert glue.TASKS["stsb"].num_labels == 1 and glue.TASKS["stsb"].is_regression
  assert glue.TASKS["mnli"].num_labels == 3
  assert glue.TASKS["mnli"].eval_splits == ("validation_matched", "validation_mismatched")
  assert not glue.TASKS["cola"].header and glue.TASKS["sst2"].header
  binary = ("cola", "sst2", "mrpc", "qqp", "qnli", "rte", "wnli")
  assert all(glue.TASKS[t].num_labels == 2 and not glue.TASKS[t].is_regression for t in binary)


@pytest.mark.parametrize("task, split", list(SIZES))
def test_shared_glue_reads_with_official_sizes(shared_data, task, split):
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # the shared files are clean: nothing skipped
    ex = glue.read_tsv_split(task, shared_data / "glue", split)
  t = glue.TASKS[task]
  assert len(ex) == len(ex.labels) == len(ex.indices) == SIZES[task, split]
  assert ex.labels.dtype == np.int64 and set(ex.labels.tolist()) == {0, 1}
  assert ex.indices.tolist() == list(range(len(ex)))  # no row skipped
  assert (ex.texts_b is None) == (len(t.text_columns) == 1)
  assert all(ex.texts_a) and (ex.texts_b is None or len(ex.texts_b) == len(ex))


def test_shared_glue_rows_and_labels(shared_data):
  root = shared_data / "glue"
  rte = glue.read_tsv_split("rte", root, "dev")  # the file's stem works as a split name
  assert rte.texts_b[0] == "Christopher Reeve had an accident."
  assert rte.labels[:2].tolist() == [1, 0]  # not_entailment, entailment (TFDS order)
  cola = glue.read_tsv_split("CoLA", root, "validation")  # no header: row 0 is data
  assert cola.texts_a[0] == "The sailors rode the breeze clear of the rocks."
  assert cola.labels[0] == 1 and np.bincount(cola.labels).tolist() == [322, 721]
  sst2 = glue.read_tsv_split("sst2", root / "SST-2", "validation")  # the task dir directly
  assert sst2.texts_a[1] == "unflinchingly bleak and desperate "  # text kept as in the file
  assert np.bincount(sst2.labels).tolist() == [428, 444]
  first = glue.read_tsv_split("sst2", root, "train", max_examples=10)
  assert len(first) == 10 and first.texts_a[0] == "hide new secretions from the parental units "


def test_mrpc_with_bom_and_unbalanced_quotes(tmp_path):
  write_tsv(tmp_path / "MRPC" / "dev.tsv", [
      "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
      '1\t702876\t702977\tHe called " the witness , of course .\tThe "witness" lied .',
      '0\t2108705\t2108831\t" Yucaipa owned Dominick \'s .\tYucaipa bought it .',
  ], bom=True)
  ex = glue.read_tsv_split("mrpc", tmp_path, "validation")
  assert ex.texts_a == ['He called " the witness , of course .', '" Yucaipa owned Dominick \'s .']
  assert ex.texts_b == ['The "witness" lied .', "Yucaipa bought it ."]
  assert ex.labels.tolist() == [1, 0]


def test_stsb_is_regression(tmp_path):
  head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
  write_tsv(tmp_path / "STS-B" / "train.tsv", [
      head, "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane takes off.\t"
      "An air plane is taking off.\t5.000",
      "1\tmain-news\theadlines\t2013\t0004\tnone\tnone\tA \"quote.\tB\t3.800",
      "2\tmain-news\theadlines\t2013\t0005\tnone\tnone\tC\tD\tn/a"])
  with pytest.warns(UserWarning, match=r"skipped 1 malformed row.*line 4: score 'n/a'"):
    ex = glue.read_tsv_split("stsb", tmp_path, "train")
  assert ex.labels.dtype == np.float32 and ex.labels.tolist() == pytest.approx([5.0, 3.8])
  assert ex.texts_a == ["A plane takes off.", 'A "quote.'] and ex.texts_b[1] == "B"


def test_malformed_rows_are_skipped_with_one_warning(tmp_path):
  write_tsv(tmp_path / "dev.tsv", [  # a task directory given directly
      "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
      "0\t1\t2\tHow?\tWhy?\t0",
      "1\t3\t4\tA question cut short",  # QQP has a few rows like this
      "2\t5\t6\tWhat?\tWhat is it?\tmaybe",
      "3\t7\t8\tWho?\tWho\tis it?\t1",  # a tab inside a question: the fields no longer line up
      "4\t9\t10\tWhen?\tAt what time?\t1", ""])  # a blank line at the end is no row
  with pytest.warns(UserWarning, match=r"skipped 3 malformed row\(s\); first: line 3: 4 fields, "
                    r"expected 6") as record:
    ex = glue.read_tsv_split("qqp", tmp_path, "validation")
  assert len(record) == 1
  assert ex.indices.tolist() == [0, 4] and ex.labels.tolist() == [0, 1]
  assert ex.texts_b == ["Why?", "At what time?"]


def test_mnli_train_and_dev_headers_differ(tmp_path):
  cols = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
          "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
  row = ["0", "31193", "31193n", "government", "( ( P ) )", "( H )", "(ROOT P)", "(ROOT H)", "P.",
         "H."]
  write_tsv(tmp_path / "MNLI" / "train.tsv", ["\t".join(cols + ["label1", "gold_label"]),
                                              "\t".join(row + ["neutral", "neutral"])])
  write_tsv(tmp_path / "MNLI" / "dev_mismatched.tsv", [
      "\t".join(cols + ["label1", "label2", "label3", "label4", "label5", "gold_label"]),
      "\t".join(row + ["contradiction"] * 6)])
  train = glue.read_tsv_split("mnli", tmp_path, "train")
  dev = glue.read_tsv_split("mnli", tmp_path, "validation_mismatched")
  assert (train.texts_a, train.texts_b, train.labels.tolist()) == (["P."], ["H."], [1])
  assert (dev.texts_a, dev.labels.tolist()) == (["P."], [2])
  with pytest.raises(DataError, match="dev_matched.tsv does not exist"):
    glue.read_tsv_split("mnli", tmp_path, "dev_matched")


def test_bad_inputs_fail_with_one_line(shared_data, tmp_path):
  cases = [
      (DataError, lambda: glue.read_tsv_split("sst2", tmp_path / "nowhere", "train"),
       rf"GLUE sst2: directory {tmp_path}/nowhere does not exist; expected "
       r"GLUE_DIR/SST-2/train.tsv or TASK_DIR/train.tsv, tab-separated with header"),
      (DataError, lambda: glue.read_tsv_split("qnli", shared_data / "glue", "train"),
       r"GLUE qnli train: .*/QNLI/train.tsv does not exist; expected GLUE_DIR/QNLI/train.tsv "
       r"or TASK_DIR/train.tsv, tab-separated with header \(index, question, sentence, label\)"),
      (DataError, lambda: glue.read_tsv_split("cola", shared_data / "glue" / "RTE", "dev"),
       r"GLUE cola validation: .*/RTE/dev.tsv holds no valid rows \(first problem: line 1: "
       r"label 'sentence1' not in 0, 1\); expected .* no header, columns: source, label"),
      (DataError, lambda: glue.read_tsv_split("sst2", shared_data / "glue" / "RTE", "dev"),
       r"/RTE/dev.tsv has no column sentence in its header line"),
      (ConfigError, lambda: glue.read_tsv_split("glue", shared_data / "glue", "dev"),
       r"unknown GLUE task 'glue'; allowed: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli$"),
      (ConfigError, lambda: glue.read_tsv_split("rte", shared_data / "glue", "test"),
       r"GLUE rte: unknown split 'test'; allowed: train \(train.tsv\), validation \(dev.tsv\)"),
      (ConfigError, lambda: metrics.compute_metrics("mnli-mm", [0], [0]),
       r"unknown finetune task 'mnli-mm'; allowed: cola, "),
  ]
  for error, call, pattern in cases:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      with pytest.raises(error, match=pattern) as e:
        call()
    assert "\n" not in str(e.value)


def test_metrics_match_hand_computed_values():
  # CoLA, confusion matrix TP=2 FN=1 TN=1 FP=1: MCC = (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6.
  cola = metrics.compute_metrics("cola", [1, 1, 0, 0, 1], [1, 1, 1, 0, 0])
  assert cola == {"mcc": pytest.approx(100 / 6)}
  # MRPC, TP=2 FN=2 FP=1 TN=1: F1 = 2TP / (2TP + FP + FN) = 4/7, accuracy 3/6.
  labels, preds = [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 1, 0]
  mrpc = metrics.compute_metrics("mrpc", preds, labels)
  assert mrpc == {"f1": pytest.approx(400 / 7), "accuracy": pytest.approx(50.0)}
  assert list(mrpc) == ["f1", "accuracy"]
  assert metrics.glue_score("mrpc", mrpc) == pytest.approx((400 / 7 + 50) / 2)
  # Logits are reduced by argmax.
  logits = np.eye(2)[preds] * 3 - 1
  assert metrics.compute_metrics("qqp", logits, labels) == mrpc
  mnli = metrics.compute_metrics("mnli", [0, 1, 2, 2], [0, 1, 2, 1])
  assert mnli == {"accuracy": 75.0}
  # STS-B: x = 1..4, y = 1, 2, 3, 10: Pearson = 14 / sqrt(5 * 50); the ranks agree: Spearman 1.
  stsb = metrics.compute_metrics("stsb", np.array([[1.0], [2], [3], [4]]), [1, 2, 3, 10])
  assert stsb == {"pearson": pytest.approx(100 * 14 / math.sqrt(250)),
                  "spearman": pytest.approx(100.0)}
  assert metrics.glue_score("stsb", stsb) == pytest.approx((100 * 14 / math.sqrt(250) +
                                                                 100) / 2)
  assert math.isnan(metrics.compute_metrics("stsb", [2.0, 2.0], [1.0, 3.0])["pearson"])
  assert [metrics.primary_metric(t) for t in ("cola", "sst2", "mrpc", "stsb")] == [
      "mcc", "accuracy", "f1_accuracy_mean", "pearson_spearman_mean"]
  assert metrics.glue_score("cola", cola) == pytest.approx(100 / 6)
  with pytest.raises(ValueError, match="do not match labels"):
    metrics.compute_metrics("rte", [0, 1], [0])
  with pytest.raises(ValueError, match="test splits carry no labels"):
    metrics.compute_metrics("rte", [0, 1], [0, -1])
  with pytest.raises(ValueError, match="metrics lack f1"):
    metrics.glue_score("qqp", {"accuracy": 90.0})


def test_prediction_files_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 3, 50)
  preds = np.where(rng.random(50) < 0.7, labels, rng.integers(0, 3, 50))
  indices = np.arange(50) * 2
  path = metrics.write_predictions(tmp_path / "out" / "mnli.tsv", indices, preds, labels,
                                        task="mnli")
  lines = path.read_text().splitlines()
  assert lines[0] == "index\tprediction\tlabel" and len(lines) == 51
  assert lines[1] == f"0\t{glue.TASKS['mnli'].label_names[preds[0]]}\t" \
                     f"{glue.TASKS['mnli'].label_names[labels[0]]}"
  i, p, y = metrics.read_predictions(path, task="mnli")
  assert (i.tolist(), p.tolist(), y.tolist()) == (indices.tolist(), preds.tolist(),
                                                   labels.tolist())
  assert metrics.compute_metrics("mnli", p, y) == metrics.compute_metrics(
      "mnli", preds, labels)

  scores = rng.normal(2.5, 1.0, 20).astype(np.float32)
  gold = np.round(rng.uniform(0, 5, 20), 1).astype(np.float32)
  path = metrics.write_predictions(tmp_path / "stsb.tsv", np.arange(20), scores, gold,
                                        task="stsb")
  assert path.read_text().splitlines()[1].endswith(f"\t{gold[0]:g}")  # labels read as written
  _, p, y = metrics.read_predictions(path, task="stsb")
  assert y.dtype == np.float32 and np.array_equal(y, gold) and np.array_equal(p, scores)
  assert metrics.compute_metrics("stsb", p, y) == metrics.compute_metrics(
      "stsb", scores, gold)

  # Unlabelled (test) predictions: the label column is left empty.
  path = metrics.write_predictions(tmp_path / "test.tsv", [0, 1], [1, 0], [-1, -1],
                                        task="rte")
  assert path.read_text().splitlines()[1:] == ["0\tnot_entailment\t", "1\tentailment\t"]
  assert metrics.read_predictions(path, task="rte")[2].tolist() == [-1, -1]
  with pytest.raises(DataError, match=r"line 2: 'not_entailment' is not a sst2 prediction"):
    metrics.read_predictions(path, task="sst2")


# -- TFDS: a fake prepared glue/<task>, laid out as TFDS's own glue builder lays it out ---------

def make_fake_tfds_glue(data_dir, config, features, splits):
  import tensorflow_datasets as tfds

  class Glue(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("2.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=config)]
    code_path = None  # no metadata files next to this module

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                   disable_shuffling=True)

    def _split_generators(self, dl_manager):
      return {name: self._generate_examples(rows) for name, rows in splits.items()}

    def _generate_examples(self, rows):
      for row in rows:
        yield int(row["idx"]), row

  Glue.name = "glue"
  builder = Glue(config=config, data_dir=data_dir, file_format="array_record")
  with tempfile.TemporaryDirectory() as scratch:
    builder.download_and_prepare(download_dir=scratch, download_config=tfds.download.
                                 DownloadConfig(try_download_gcs=False))


@pytest.fixture(scope="module")
def fake_tfds(shared_data, tmp_path_factory):
  """A data_dir with glue/wnli (from the shared WNLI TSVs) and a tiny glue/stsb."""
  import tensorflow_datasets as tfds
  data_dir = tmp_path_factory.mktemp("tfds")
  wnli = {}
  for split in ("train", "validation"):
    ex = glue.read_tsv_split("wnli", shared_data / "glue", split)
    wnli[split] = [{"sentence1": a, "sentence2": b, "label": y, "idx": i}
                   for a, b, y, i in zip(ex.texts_a, ex.texts_b, ex.labels, ex.indices)]
  wnli["test"] = [{"sentence1": "A.", "sentence2": "B.", "label": -1, "idx": 0}]
  make_fake_tfds_glue(data_dir, "wnli", {
      "sentence1": tfds.features.Text(), "sentence2": tfds.features.Text(),
      "label": tfds.features.ClassLabel(names=["not_entailment", "entailment"]), "idx": np.int32},
      wnli)
  make_fake_tfds_glue(data_dir, "stsb", {
      "sentence1": tfds.features.Text(), "sentence2": tfds.features.Text(), "label": np.float32,
      "idx": np.int32}, {"validation": [{"sentence1": "A", "sentence2": "B", "label": 3.8,
                                         "idx": 0}]})
  return data_dir


def test_tfds_reads_the_same_examples_as_the_tsv(shared_data, fake_tfds):
  for split in ("train", "dev"):
    tsv = glue.read_tsv_split("wnli", shared_data / "glue", split)
    ds = glue.read_tfds_split("wnli", split, fake_tfds)
    assert (ds.texts_a, ds.texts_b) == (tsv.texts_a, tsv.texts_b)
    assert ds.labels.dtype == np.int64 and np.array_equal(ds.labels, tsv.labels)
    assert np.array_equal(ds.indices, tsv.indices)
  part = glue.read_tfds_split("wnli", "train[:5]", fake_tfds)
  assert part.texts_a == glue.read_tsv_split("wnli", shared_data / "glue", "train",
                                             max_examples=5).texts_a
  assert glue.read_tfds_split("wnli", "test", fake_tfds).labels.tolist() == [-1]
  stsb = glue.read_tfds_split("stsb", "validation", fake_tfds)
  assert stsb.labels.dtype == np.float32 and stsb.labels.tolist() == pytest.approx([3.8])


def test_tfds_errors_are_one_line(fake_tfds, tmp_path):
  with pytest.raises(DataError, match=rf"^tfds:glue/rte is not prepared in {tmp_path}; ") as e:
    glue.read_tfds_split("rte", "validation", tmp_path)
  assert "tfds build glue/rte --file_format=array_record" in str(e.value)
  assert "\n" not in str(e.value)
  with pytest.raises(DataError, match=r"^tfds:glue/wnli:bogus: .*'train', 'validation'") as e:
    glue.read_tfds_split("wnli", "bogus", fake_tfds)
  assert "\n" not in str(e.value)


def test_finetune_reads_tfds_glue_like_the_tsvs(shared_data, fake_tfds):
  task = glue.get_task("wnli")
  for split, limit in (("train", 40), ("validation", 0)):
    tsv = task.read(split, str(shared_data / "glue"), limit)
    ds = task.read(split, f"tfds:{fake_tfds}", limit)
    assert ds.texts_a == tsv.texts_a and np.array_equal(ds.labels, tsv.labels)
