"""`jaxlm data prepare`: local text files -> a TFDS dataset (array_record) that `tfds:NAME` reads.

Each file becomes one record {"id": its path relative to the deepest directory holding all the
files, "text": its text as `text_data.read_documents` gives it}, in the sorted file order, in a
single `train` split. Ids end with the file name, so `text_data.split_documents` holds out the
same documents whether a run reads `text:DIR` or the prepared `tfds:NAME`.

The dataset is written by a small `GeneratorBasedBuilder` made per call, so TFDS lays it out as
any catalog dataset (dataset_info.json, features.json, sharded array_record files) and reads it
back with its own reader; neither step needs TensorFlow. (`tfds.dataset_builders.
store_as_tfds_dataset` would: its `_split_generators` tests `isinstance(ds, tf.data.Dataset)`.)
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from etils import epath

from jaxlm import storage
from jaxlm.data.sources.text import read_documents, source_files
from jaxlm.errors import DataError

DATASET_VERSION = "1.0.0"
SPLIT = "train"
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def document_ids(files: list[Path]) -> dict[str, str]:
  """{str(file): id}, the id being the file's path relative to the common parent of all files."""
  paths = [Path(f).absolute() for f in files]
  root = Path(os.path.commonpath([p.parent for p in paths]))
  return {str(f): p.relative_to(root).as_posix() for f, p in zip(files, paths)}


def _builder_cls(name: str, records: list[dict[str, str]], description: str):
  import tensorflow_datasets as tfds  # noqa: PLC0415 - slow to import; only this command needs it

  # skip_registration: a class per call, so a second `prepare` in one process (tests) or a name
  # shared with the TFDS catalog never collides in TFDS's registry.
  class TextFiles(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version(DATASET_VERSION)
    # No code-side files (checksums.tsv, metadata) belong to this dataset. Finding them would
    # also import `importlib_resources` (tfds/core/dataset_builder.py:345), which tfds 4.9.10
    # requires only on Python < 3.9.
    code_path = None

    def _info(self) -> tfds.core.DatasetInfo:
      # DatasetInfo directly: `dataset_info_from_configs` would look for README/CITATIONS
      # metadata files next to this module.
      return tfds.core.DatasetInfo(
          builder=self, description=description,
          features=tfds.features.FeaturesDict({"id": tfds.features.Text(),
                                               "text": tfds.features.Text()}),
          disable_shuffling=True)  # keep the sorted file order

    def _split_generators(self, dl_manager):
      del dl_manager  # nothing to download
      return {SPLIT: self._generate_examples()}

    def _generate_examples(self):
      # Integer keys: with shuffling disabled TFDS orders records by key.
      yield from enumerate(records)

  TextFiles.name = name
  return TextFiles


def prepare(source: str, name: str, data_dir: str | os.PathLike[str], *,
            overwrite: bool = False) -> epath.Path:
  """Writes the documents of `source` (`default` or `text:PATH[,PATH...]`) as the TFDS dataset
  `name` under `data_dir` (local or gs://); returns the dataset's version directory,
  DATA_DIR/NAME/1.0.0."""
  if not _NAME.fullmatch(name):
    raise DataError(f"--name {name!r}: not a dataset name; use snake_case (a-z, 0-9, _), "
                    "starting with a letter")
  if storage.is_remote(data_dir):
    return _prepare_and_upload(source, name, storage.path(data_dir), overwrite)
  files = source_files(source)
  docs = read_documents(files)
  ids = document_ids(files)
  records = [{"id": ids[path], "text": text} for path, text in docs.items()]

  import tensorflow_datasets as tfds  # noqa: PLC0415 - as above
  builder = _builder_cls(name, records, f"Text files of {source}, made by `jaxlm data prepare`.")(
      data_dir=data_dir, file_format="array_record")
  dataset_dir = Path(builder.data_dir)
  # TFDS would silently keep the old records and report success.
  if dataset_dir.exists() and not overwrite:
    raise DataError(f"tfds:{name} already exists in {dataset_dir}; delete it or choose "
                    "another --name")
  mode = tfds.download.GenerateMode
  config = tfds.download.DownloadConfig(
      try_download_gcs=False,  # offline, and a catalog name must not fetch the catalog's data
      download_mode=mode.FORCE_REDOWNLOAD if overwrite else mode.REUSE_DATASET_IF_EXISTS)
  # TFDS makes a downloads/ folder even with nothing to download; keep it out of data_dir.
  with tempfile.TemporaryDirectory() as scratch:
    builder.download_and_prepare(download_dir=scratch, download_config=config)
  return storage.path(dataset_dir)


def _prepare_and_upload(source: str, name: str, data_dir: epath.Path,
                        overwrite: bool) -> epath.Path:
  """array_record reads Cloud Storage but writes local files only: the dataset is built in a
  local scratch directory and copied up, dataset_info.json last, since readers take its
  presence to mean the dataset is complete."""
  target = data_dir / name / DATASET_VERSION
  if target.exists() and not overwrite:
    raise DataError(f"tfds:{name} already exists in {target}; delete it or choose another --name")
  with tempfile.TemporaryDirectory() as scratch:
    built = prepare(source, name, scratch)
    if target.exists():
      target.rmtree()
    target.mkdir(parents=True, exist_ok=True)
    for file in sorted(built.iterdir(), key=lambda f: (f.name == "dataset_info.json", f.name)):
      with file.open("rb") as src, (target / file.name).open("wb") as dst:
        shutil.copyfileobj(src, dst, 16 << 20)
  return target
