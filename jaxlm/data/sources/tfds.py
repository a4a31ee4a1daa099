"""`tfds:NAME[/CONFIG][:SPLIT]` sources: documents read from a prepared TensorFlow-Datasets split.

The split is opened through TFDS's random-access data source (array_record), which needs no
TensorFlow. The dataset is read from its files only (`dataset_info.json`, `features.json`), never
through catalog code, so a dataset made by `jaxlm data prepare` reads the same way as a catalog
dataset prepared elsewhere, and a missing one is reported instead of being downloaded.
"""

from __future__ import annotations

import re

from jaxlm.errors import DataError

FORM = "tfds:NAME[/CONFIG][:SPLIT]"  # how a source of this scheme is written
_EXAMPLE = f"{FORM}, e.g. tfds:my_corpus:train[:10%]"
_NAME = re.compile(r"[a-z][a-z0-9_]*(/[\w.\-]+)?")
# One or more `split[slice]` terms joined by `+`; TFDS checks the slice itself.
_SPLIT = re.compile(r"[A-Za-z_][\w\-]*(\[[^\[\]]*\])?(\+[A-Za-z_][\w\-]*(\[[^\[\]]*\])?)*")
_BATCH = 1024  # records per array_record read


def parse_tfds_source(source: str) -> tuple[str, str]:
  """`tfds:NAME[/CONFIG][:SPLIT]` -> (`NAME[/CONFIG]`, split); the split defaults to `train`."""
  if not source.startswith("tfds:"):
    raise DataError(f"config.data.source={source!r}: not a TFDS source; expected {_EXAMPLE}")
  name, colon, split = source[len("tfds:"):].partition(":")
  split = split if colon else "train"
  if not _NAME.fullmatch(name):
    raise DataError(f"config.data.source={source!r}: bad dataset name {name!r}; expected {_EXAMPLE} "
                    "(NAME in snake_case)")
  if not _SPLIT.fullmatch(split):
    raise DataError(f"config.data.source={source!r}: bad split {split!r}; expected {_EXAMPLE}")
  return name, split


def as_str(value) -> str:
  """A TFDS text feature as str (array_record gives bytes)."""
  if isinstance(value, bytes):
    return value.decode("utf-8", errors="replace")
  return value if isinstance(value, str) else str(value)


def open_split(name: str, split: str, data_dir: str | None, features: tuple[str, ...],
               how_to_prepare: str):
  """(builder, records) of a prepared TFDS split, read from its files only; `{where}` in
  `how_to_prepare` becomes the data dir looked in.

  The one opener of jaxlm's TFDS readers (documents here, GLUE in jaxlm.eval.tasks.glue): each
  failure is one DataError naming the dataset, where it looked and `how_to_prepare`.
  """
  # Late: slow to import, and only TFDS reads need it.
  import tensorflow_datasets as tfds  # noqa: PLC0415
  from tensorflow_datasets.core import read_only_builder  # noqa: PLC0415

  where = data_dir or tfds.core.constants.get_default_data_dir()
  try:
    # From the files only: a catalog builder would try to download a missing dataset.
    builder = read_only_builder.builder_from_files(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(f"tfds:{name} is not prepared in {where}; "
                    f"{how_to_prepare.format(where=where)}") from None
  keys = builder.info.features.keys() if hasattr(builder.info.features, "keys") else []
  missing = [k for k in features if k not in keys]
  if missing:
    raise DataError(f"tfds:{name} in {builder.data_dir} has no feature "
                    f"{', '.join(repr(k) for k in missing)}; "
                    f"its features: {', '.join(sorted(keys)) or 'none'}")
  try:
    count = builder.info.splits[split].num_examples  # checks the split (and slice) first
  except (KeyError, ValueError) as e:  # TFDS's message names the splits there are
    raise DataError(f"tfds:{name}:{split}: {str(e).splitlines()[0]}") from None
  if not count:
    raise DataError(f"tfds:{name}:{split} holds no records")
  try:
    records = builder.as_data_source(split=split)
  except NotImplementedError:
    raise DataError(f"tfds:{name} in {builder.data_dir} is stored as "
                    f"{builder.info.file_format.value}, which has no random access; prepare it "
                    "as array_record") from None
  return builder, records


def iter_records(records):
  """(index, record) over a TFDS data source, read in batches: array_record then fetches many
  records per call instead of one at a time."""
  for start in range(0, len(records), _BATCH):
    yield from enumerate(records.__getitems__(range(start, min(start + _BATCH, len(records)))),
                         start)


def read_tfds_documents(source: str, data_dir: str | None,
                        text_key: str = "text") -> dict[str, str]:
  """{document id: text} of a prepared TFDS split.

  Ids are the record's `id` feature where it has one, else NAME:SPLIT:INDEX. Records whose text
  is blank are skipped, as `text_data.read_documents` skips blank files.
  """
  name, split = parse_tfds_source(source)
  # `jaxlm data prepare` makes datasets without configs; one with a config comes from TFDS.
  how = ("with TFDS (file_format=array_record)" if "/" in name else
         f"with `jaxlm data prepare --source text:DIR --name {name} --data_dir {{where}}`")
  _, records = open_split(name, split, data_dir, (text_key,),
                          f"prepare it {how}, or set --config.data.tfds_data_dir to where it is")
  docs: dict[str, str] = {}
  for index, record in iter_records(records):
    fallback = f"{name}:{split}:{index}"
    doc_id = as_str(record["id"]) if "id" in record else fallback
    # A repeated id would silently drop a document; the index keeps it.
    docs[fallback if doc_id in docs else doc_id] = as_str(record[text_key])
  docs = {k: v for k, v in docs.items() if v.strip()}
  if not docs:
    raise DataError(f"tfds:{name}:{split}: every {text_key!r} is empty ({len(records)} records)")
  return docs


def read(source: str, data_config) -> dict[str, str]:
  """The `tfds:` source."""
  return read_tfds_documents(source, data_config.tfds_data_dir or None, data_config.tfds_text_key)
