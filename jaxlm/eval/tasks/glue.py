"""GLUE tasks: one table of every task's layout, and readers for its TSVs and its TFDS datasets.

The TSV reader takes the files exactly as the GLUE download script (`download_glue_data.py`)
leaves them, from the GLUE root (holding `SST-2/`, `MNLI/`, ...) or from one task's directory.
Files are read with quoting turned off: some STS-B and MRPC lines hold unbalanced quotes that a
CSV reader would run into the next line. MRPC's `train.tsv`/`dev.tsv` keep the byte-order mark of
Microsoft's `msr_paraphrase_train.txt`, which is dropped. Rows with the wrong number of fields or
an unknown label (QQP and MNLI have a few) are skipped with one warning per file.

Label ids follow the label order of TFDS `glue/*` (its ClassLabel names, `GlueTask.label_meanings`),
so a model fine-tuned on the TSVs reads the TFDS dataset the same way, and back.
`Examples.indices` are row numbers in the file (0-based, header excluded); TFDS's `idx` feature
numbers rows the same way (except MRPC, which TFDS numbers within Microsoft's original file).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np

from jaxlm.data.sources import tfds
from jaxlm.errors import ConfigError, DataError
from jaxlm.eval.tasks.base import Examples

_TRAIN_DEV = (("train", "train.tsv"), ("validation", "dev.tsv"))


@dataclasses.dataclass(frozen=True)
class GlueTask:
  """Layout of one GLUE task. Column names are those of the TSV header (for CoLA, which has no
  header, the names given here in `columns`)."""

  name: str  # the key in TASKS and the TFDS config: glue/<name>
  dir_name: str  # its directory in the GLUE download, e.g. SST-2
  text_columns: tuple[str, ...]  # one for single-sentence tasks, two for pairs
  label_column: str
  # Label strings as written in the TSVs, in id order; empty for regression (STS-B).
  label_names: tuple[str, ...]
  label_meanings: tuple[str, ...]  # what each id means: TFDS's ClassLabel names
  tfds_text_features: tuple[str, ...]  # the text features of TFDS glue/<name>, as text_columns
  metrics: tuple[str, ...]  # keys of metrics.compute_metrics, in leaderboard order
  columns: tuple[str, ...]  # every column of the dev file, in order
  header: bool = True  # False: CoLA's train/dev files start with data
  is_regression: bool = False
  split_files: tuple[tuple[str, str], ...] = _TRAIN_DEV  # (split, file name); train first
  kind: str = "finetune"  # a jaxlm.eval.tasks.base.FinetuneTask
  needs_data_dir: bool = True  # GLUE is not shipped: --config.glue_dir or $GLUE_DIR

  @property
  def num_labels(self) -> int:
    """Width of the classifier head: 1 for regression."""
    return 1 if self.is_regression else len(self.label_names)

  @property
  def splits(self) -> tuple[str, ...]:
    return tuple(split for split, _ in self.split_files)

  @property
  def eval_splits(self) -> tuple[str, ...]:
    """The labelled dev splits: ("validation",), or MNLI's matched and mismatched."""
    return tuple(split for split in self.splits if split != "train")

  def read(self, split: str, data_dir: str | None = None, max_examples: int = 0) -> Examples:
    """`data_dir` is a directory in the official TSV layout, or `tfds:DATA_DIR` for the
    prepared TFDS `glue/<task>` datasets (`tfds:` alone: TFDS's default data dir)."""
    if not data_dir:
      raise ConfigError(f"GLUE {self.name}: no GLUE data given; set --config.glue_dir or "
                        "$GLUE_DIR (the GLUE TSVs, or tfds:DATA_DIR)")
    if data_dir.startswith("tfds:"):
      sliced = f"{split}[:{max_examples}]" if max_examples else split
      return read_tfds_split(self, sliced, data_dir[len("tfds:"):] or None)
    return read_tsv_split(self, data_dir, split, max_examples)

  def layout(self) -> str:
    """The expected file layout, in words, for error messages."""
    cols = ", ".join(self.columns)
    if not self.header:
      return f"tab-separated, no header, columns: {cols}"
    return f"tab-separated with header ({cols})"


_MNLI_DEV_COLUMNS = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                     "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
                     "sentence2", "label1", "label2", "label3", "label4", "label5", "gold_label")
_BINARY = ("0", "1")
_ENTAIL = ("entailment", "not_entailment")

TASKS: dict[str, GlueTask] = {t.name: t for t in (
    GlueTask("cola", "CoLA", ("sentence",), "label", _BINARY, ("unacceptable", "acceptable"),
             ("sentence",), ("mcc",), ("source", "label", "original_label", "sentence"),
             header=False),
    GlueTask("sst2", "SST-2", ("sentence",), "label", _BINARY, ("negative", "positive"),
             ("sentence",), ("accuracy",), ("sentence", "label")),
    # The GLUE script copies the header of Microsoft's file, byte-order mark included.
    GlueTask("mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", _BINARY,
             ("not_equivalent", "equivalent"), ("sentence1", "sentence2"), ("f1", "accuracy"),
             ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")),
    GlueTask("stsb", "STS-B", ("sentence1", "sentence2"), "score", (), (),
             ("sentence1", "sentence2"), ("pearson", "spearman"),
             ("index", "genre", "filename", "year", "old_index", "source1", "source2",
              "sentence1", "sentence2", "score"), is_regression=True),
    GlueTask("qqp", "QQP", ("question1", "question2"), "is_duplicate", _BINARY,
             ("not_duplicate", "duplicate"), ("question1", "question2"), ("f1", "accuracy"),
             ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")),
    # MNLI's train.tsv has one annotator column (label1) where the dev files have five; columns
    # are found by name in each file's header, so both read the same way.
    GlueTask("mnli", "MNLI", ("sentence1", "sentence2"), "gold_label",
             ("entailment", "neutral", "contradiction"), ("entailment", "neutral", "contradiction"),
             ("premise", "hypothesis"), ("accuracy",), _MNLI_DEV_COLUMNS,
             split_files=(("train", "train.tsv"), ("validation_matched", "dev_matched.tsv"),
                          ("validation_mismatched", "dev_mismatched.tsv"))),
    GlueTask("qnli", "QNLI", ("question", "sentence"), "label", _ENTAIL, _ENTAIL,
             ("question", "sentence"), ("accuracy",), ("index", "question", "sentence", "label")),
    GlueTask("rte", "RTE", ("sentence1", "sentence2"), "label", _ENTAIL, _ENTAIL,
             ("sentence1", "sentence2"), ("accuracy",),
             ("index", "sentence1", "sentence2", "label")),
    # WNLI's 0/1 mean not_entailment/entailment: the reverse of RTE's label order.
    GlueTask("wnli", "WNLI", ("sentence1", "sentence2"), "label", _BINARY,
             ("not_entailment", "entailment"), ("sentence1", "sentence2"), ("accuracy",),
             ("index", "sentence1", "sentence2", "label")),
)}


def get_task(task: GlueTask | str) -> GlueTask:
  """The task for a GlueTask or a name: `sst2`, or its directory name `SST-2` (any case)."""
  if isinstance(task, GlueTask):
    return task
  key = str(task).lower()
  for t in TASKS.values():
    if key in (t.name, t.dir_name.lower()):
      return t
  raise ConfigError(f"unknown GLUE task {task!r}; allowed: {', '.join(TASKS)}")


def _split_file(task: GlueTask, split: str) -> tuple[str, str]:
  """(split, file name); a split is named as in TFDS (`validation`) or by its file (`dev`)."""
  for name, file in task.split_files:
    if split in (name, file, file.removesuffix(".tsv")):
      return name, file
  allowed = ", ".join(f"{name} ({file})" for name, file in task.split_files)
  raise ConfigError(f"GLUE {task.name}: unknown split {split!r}; allowed: {allowed} (test files "
                    "carry no labels and are not read)")


def task_dir(task: GlueTask | str, glue_dir: str | Path) -> Path:
  """The directory holding `task`'s TSVs: GLUE_DIR/<dir_name> (or GLUE_DIR/<name>) where it
  exists, else `glue_dir` itself, taken to be the task's directory."""
  task, root = get_task(task), Path(glue_dir)
  for sub in (task.dir_name, task.name):
    if (root / sub).is_dir():
      return root / sub
  return root


def _decode(raw: bytes, lineno: int, not_utf8: list[int]) -> str:
  try:
    return raw.decode("utf-8")
  except UnicodeDecodeError:
    # Kept, with a warning: one odd byte should not cost an example.
    not_utf8.append(lineno)
    return raw.decode("utf-8", errors="replace")


def read_tsv_split(task: GlueTask | str, glue_dir: str | Path, split: str,
                   max_examples: int = 0) -> Examples:
  """Reads one labelled split (`train`, `validation`, MNLI's `validation_matched`/`_mismatched`,
  or a file's stem such as `dev`) of a GLUE TSV. `max_examples` > 0 keeps the first N examples.
  """
  task = get_task(task)
  split, file_name = _split_file(task, split)
  root = Path(glue_dir)
  where = (f"expected GLUE_DIR/{task.dir_name}/{file_name} or TASK_DIR/{file_name}, "
           f"{task.layout()}, as written by the GLUE download script")
  if not root.is_dir():
    raise DataError(f"GLUE {task.name}: directory {root} does not exist; {where}")
  path = task_dir(task, root) / file_name
  if not path.is_file():
    raise DataError(f"GLUE {task.name} {split}: {path} does not exist; {where}")

  texts: list[list[str]] = [[] for _ in task.text_columns]
  labels: list[int | float] = []
  indices: list[int] = []
  bad: list[str] = []  # "line N: why" of each skipped row, for the warning
  not_utf8: list[int] = []  # line numbers
  with path.open("rb") as f:
    # Iterating over a binary file splits on b"\n" only: str.splitlines() would also split on
    # \x1c, \x85 or \u2028, which real sentences hold.
    lines = iter(f)
    columns = task.columns
    lineno = 0  # 1-based line number in the file, for messages
    if task.header:
      first = next(lines, b"")
      lineno += 1
      columns = tuple(_decode(first, lineno, not_utf8).lstrip("\ufeff").rstrip("\r\n")
                      .split("\t"))
      missing = [c for c in (*task.text_columns, task.label_column) if c not in columns]
      if missing:
        raise DataError(f"GLUE {task.name}: {path} has no column {', '.join(missing)} in its "
                        f"header line; {where}")
    text_at = [columns.index(c) for c in task.text_columns]
    label_at = columns.index(task.label_column)
    label_ids = {name: i for i, name in enumerate(task.label_names)}
    row = -1  # data rows so far, as numbered by TFDS's `idx`
    for raw in lines:
      lineno += 1
      if max_examples > 0 and len(labels) >= max_examples:
        break
      line = _decode(raw, lineno, not_utf8).rstrip("\r\n")
      if lineno == 1:
        line = line.lstrip("\ufeff")
      if not line:
        continue  # a blank line (say, at the end) is no row, as for Python's csv reader
      row += 1
      fields = line.split("\t")
      if len(fields) != len(columns):
        bad.append(f"line {lineno}: {len(fields)} fields, expected {len(columns)}")
        continue
      value = fields[label_at].strip()
      if task.is_regression:
        try:
          label: int | float = float(value)
        except ValueError:
          label = math.nan
        if not math.isfinite(label):
          bad.append(f"line {lineno}: score {value!r} is not a number")
          continue
      elif value in label_ids:
        label = label_ids[value]
      else:
        bad.append(f"line {lineno}: label {value!r} not in {', '.join(task.label_names)}")
        continue
      for column, at in zip(texts, text_at):
        column.append(fields[at])
      labels.append(label)
      indices.append(row)

  if not_utf8:
    warnings.warn(f"{path}: {len(not_utf8)} line(s) not UTF-8, first line {not_utf8[0]}; "
                  "undecodable bytes replaced", stacklevel=2)
  if bad:
    warnings.warn(f"{path}: skipped {len(bad)} malformed row(s); first: {bad[0]}", stacklevel=2)
  if not labels:
    raise DataError(f"GLUE {task.name} {split}: {path} holds no valid rows"
                    f"{f' (first problem: {bad[0]})' if bad else ''}; {where}")
  return Examples(texts_a=texts[0], texts_b=texts[1] if len(texts) > 1 else None,
                  labels=np.asarray(labels, np.float32 if task.is_regression else np.int64),
                  indices=np.asarray(indices, np.int64))


def read_tfds_split(task: GlueTask | str, split: str,
                    data_dir: str | Path | None = None) -> Examples:
  """Reads one split of a prepared TFDS `glue/<task>` dataset (array_record), without TensorFlow.

  `split` is a TFDS split (`train`, `validation`, `test`, MNLI's `validation_matched`, slices
  such as `train[:1000]`), or a GLUE file stem (`dev`, `dev_matched`). Test splits give labels -1.
  """
  task = get_task(task)
  try:
    split = _split_file(task, split)[0]
  except ConfigError:
    pass  # not a GLUE file split (test, a slice): TFDS checks it below
  name = f"glue/{task.name}"
  builder, records = tfds.open_split(
    name, split, str(data_dir) if data_dir else None,
    (*task.tfds_text_features, "label", "idx"),
    f"prepare it with TFDS elsewhere (`tfds build {name} --file_format=array_record`), pass the "
    f"data_dir that holds {name}/VERSION, or read the GLUE TSVs instead")
  names = tuple(getattr(builder.info.features["label"], "names", ()))
  if not task.is_regression and len(names) != task.num_labels:
    raise DataError(f"tfds:{name} in {builder.data_dir}: label has {len(names)} classes, "
                    f"expected {task.num_labels} ({', '.join(task.label_meanings)})")
  if not task.is_regression and names != task.label_meanings:
    warnings.warn(f"tfds:{name}: label names {names} differ from {task.label_meanings}; ids are "
                  "used as they are", stacklevel=2)
  texts: list[list[str]] = [[] for _ in task.tfds_text_features]
  labels, indices = [], []
  for _, record in tfds.iter_records(records):
    for column, key in zip(texts, task.tfds_text_features):
      column.append(tfds.as_str(record[key]))
    labels.append(record["label"])
    indices.append(record["idx"])
  return Examples(texts_a=texts[0], texts_b=texts[1] if len(texts) > 1 else None,
                  labels=np.asarray(labels, np.float32 if task.is_regression else np.int64),
                  indices=np.asarray(indices, np.int64))
