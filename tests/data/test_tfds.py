"""`jaxlm data prepare` writes local text as a TFDS dataset; `tfds:NAME` sources read it back."""

import pytest

from jaxlm.data import prepare as data_prepare
from jaxlm.data.sources import text as text_data
from jaxlm.data.sources import tfds as tfds_source
from jaxlm.data.sources.text import DataError

GUTENBERG = ("Header\n*** START OF THIS PROJECT GUTENBERG EBOOK X ***\nThe tale.\n"
             "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\nLicence\n")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
  """(source, data_dir): four small files (one empty, one nested) prepared as `small_docs`."""
  src = tmp_path_factory.mktemp("src")
  (src / "sub").mkdir()
  (src / "a.txt").write_text("Alpha.\n\nSecond paragraph.\n")
  (src / "b.txt").write_text("  Naïve café, 東京, emoji \U0001F600  \n", encoding="utf-8")
  (src / "sub" / "c.txt").write_text(GUTENBERG)
  (src / "empty.txt").write_text("\n")
  data_dir = tmp_path_factory.mktemp("tfds")
  out = data_prepare.prepare(f"text:{src}", "small_docs", str(data_dir))
  assert out == data_dir / "small_docs" / data_prepare.DATASET_VERSION
  return f"text:{src}", data_dir


@pytest.mark.parametrize("source, expected", [
    ("tfds:foo", ("foo", "train")),
    ("tfds:foo/bar:validation", ("foo/bar", "validation")),
    ("tfds:foo:train[:10%]", ("foo", "train[:10%]")),
    ("tfds:wiki40b/en.v2:train[10:20]+test", ("wiki40b/en.v2", "train[10:20]+test")),
])
def test_parse_tfds_source(source, expected):
  assert tfds_source.parse_tfds_source(source) == expected


@pytest.mark.parametrize("source", ["foo", "tfds:", "tfds:Foo", "tfds:foo:", "tfds:foo/bar/baz",
                                    "tfds:foo:train[:10%", "tfds:my data"])
def test_bad_tfds_sources_fail_with_one_line(source):
  with pytest.raises(DataError, match=r"tfds:NAME\[/CONFIG\]\[:SPLIT\]") as e:
    tfds_source.parse_tfds_source(source)
  assert repr(source) in str(e.value) and "\n" not in str(e.value)


def test_prepared_texts_read_back_exactly(small):
  source, data_dir = small
  dataset_dir = data_dir / "small_docs" / "1.0.0"
  assert list(dataset_dir.glob("small_docs-train.array_record-*"))
  assert sorted(p.name for p in data_dir.iterdir()) == ["small_docs"]  # no downloads/ left
  local = text_data.read_documents(text_data.source_files(source))
  docs = tfds_source.read_tfds_documents("tfds:small_docs", str(data_dir))
  assert list(docs) == ["a.txt", "b.txt", "sub/c.txt"]  # sorted file order; empty.txt skipped
  assert list(docs.values()) == list(local.values())
  assert docs["sub/c.txt"] == "The tale."
  part = tfds_source.read_tfds_documents("tfds:small_docs:train[1:]", str(data_dir))
  assert part == {"b.txt": local[next(k for k in local if k.endswith("b.txt"))],
                  "sub/c.txt": "The tale."}


@pytest.mark.filterwarnings("ignore:.*not UTF-8")  # the corpus holds one legacy-encoded file
def test_a_shared_corpus_round_trips_and_splits_the_same(corpus, tmp_path):
  source = f"text:{corpus}/inaugural"
  data_prepare.prepare(source, "inaugural", tmp_path)
  local = text_data.read_documents(text_data.source_files(source))
  docs = tfds_source.read_tfds_documents("tfds:inaugural", str(tmp_path))
  assert list(docs.values()) == list(local.values())
  # Ids end with the file name, so the held-out documents are the same either way.
  assert text_data.split_documents(docs, 0.1) == text_data.split_documents(local, 0.1)


def test_not_prepared_names_the_fix(tmp_path):
  with pytest.raises(DataError) as e:
    tfds_source.read_tfds_documents("tfds:missing", str(tmp_path))
  msg = str(e.value)
  assert msg.startswith(f"tfds:missing is not prepared in {tmp_path};") and "\n" not in msg
  assert "jaxlm data prepare --source text:DIR --name missing" in msg
  assert "--config.data.tfds_data_dir" in msg


def test_bad_reads_fail_with_one_line(small):
  _, data_dir = small
  cases = {"tfds:small_docs:validation": "Unknown split 'validation'",
           "tfds:small_docs:train[:0]": "holds no records",
           "tfds:small_docs/nocfg": "is not prepared in .*; prepare it with TFDS"}
  for source, match in cases.items():
    with pytest.raises(DataError, match=match) as e:
      tfds_source.read_tfds_documents(source, str(data_dir))
    assert "\n" not in str(e.value)
  with pytest.raises(DataError, match="no feature 'body'; its features: id, text"):
    tfds_source.read_tfds_documents("tfds:small_docs", str(data_dir), text_key="body")


def test_prepare_refuses_bad_names_and_existing_data(small, tmp_path):
  source, data_dir = small
  for name in ("My-Data", "1st", "a b", ""):
    with pytest.raises(DataError, match="not a dataset name"):
      data_prepare.prepare(source, name, str(tmp_path))
  with pytest.raises(DataError, match="already exists"):
    data_prepare.prepare(source, "small_docs", str(data_dir))
  one = source.removeprefix("text:") + "/a.txt"
  data_prepare.prepare(f"text:{one}", "small_docs", tmp_path)
  data_prepare.prepare(source, "small_docs", tmp_path, overwrite=True)
  assert len(tfds_source.read_tfds_documents("tfds:small_docs", str(tmp_path))) == 3


def test_records_without_an_id_are_named_by_index(tmp_path):
  import tensorflow_datasets as tfds

  class NoIds(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")
    code_path = None

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self, features=tfds.features.FeaturesDict({"body": tfds.features.Text()}),
          disable_shuffling=True)

    def _split_generators(self, dl_manager):
      return {"test": self._generate_examples()}

    def _generate_examples(self):
      yield from enumerate([{"body": "one"}, {"body": ""}, {"body": "three"}])

  NoIds(data_dir=tmp_path, file_format="array_record").download_and_prepare(
      download_dir=tmp_path / "dl",
      download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  docs = tfds_source.read_tfds_documents("tfds:no_ids:test", str(tmp_path), text_key="body")
  assert docs == {"no_ids:test:0": "one", "no_ids:test:2": "three"}
