"""Documents from text files: the `default` corpus and `text:PATH[,PATH...]` sources.

`default` is the public-domain corpus embedded in `jaxlm/corpus` (see its SOURCES.md);
`text:` takes files, directories and globs, local or `gs://`. Each file is a document (`*.gz`
files are decompressed); Project Gutenberg headers and footers are stripped. Documents are held out for evaluation by a hash of
their name, so the split never depends on file order or on the machine.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import re
import warnings
from pathlib import Path

from etils import epath

from jaxlm import storage
from jaxlm.errors import ConfigError, DataError

_WILDCARDS = "*?["

CORPUS_DIR = Path(__file__).parents[2] / "corpus"  # jaxlm/corpus, shipped as package data
_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG.*$", re.M)
_GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG.*$", re.M)


FORM = "text:PATH[,PATH...]"  # how a source of this scheme is written

def strip_gutenberg(text: str) -> str:
  """Drops the Project Gutenberg licence header and footer, when present."""
  start, end = _GUTENBERG_START.search(text), _GUTENBERG_END.search(text)
  if start:
    text = text[start.end():end.start() if end and end.start() > start.end() else None]
  return text.strip()


def source_files(source: str) -> list[Path | epath.Path]:
  """Expands `default` or `text:PATH[,PATH...]` to a sorted list of files."""
  if source == "default":
    return sorted(p for p in CORPUS_DIR.rglob("*") if p.name.endswith((".txt", ".txt.gz")))
  if not source.startswith("text:"):
    from jaxlm.data.sources import scheme  # noqa: PLC0415 - the registry names what is allowed
    scheme(source)
    raise ConfigError(f"config.data.source={source!r}: not a text: source")
  files: list[Path | epath.Path] = []
  for part in filter(None, source[len("text:"):].split(",")):
    if storage.is_remote(part):
      files.extend(_remote_files(part))
      continue
    wild = any(c in part for c in _WILDCARDS)
    matches = sorted(glob.glob(part, recursive=True)) if wild else [part]
    if not matches or not all(Path(m).exists() for m in matches):
      raise DataError(f"config.data.source: {part!r} does not exist")
    for match in map(Path, matches):
      found = sorted(p for p in match.rglob("*") if p.is_file()) if match.is_dir() else [match]
      if not found:
        raise DataError(f"config.data.source: directory {str(match)!r} holds no files")
      files.extend(found)
  if not files:
    raise DataError(f"config.data.source={source!r}: names no files")
  return files


def _remote_files(part: str) -> list[epath.Path]:
  """A gs:// file, directory (every file below it) or glob, as `source_files` takes local ones."""
  first = min((part.index(c) for c in _WILDCARDS if c in part), default=None)
  if first is None:
    matches = [m for m in [storage.path(part)] if m.exists()]
  else:
    root = part[:first].rsplit("/", 1)[0]  # the deepest directory above the first wildcard
    matches = sorted(storage.path(root).glob(part[len(root) + 1:]))
  if not matches:
    raise DataError(f"config.data.source: {part!r} does not exist")
  files = []
  for match in matches:
    found = sorted(_files_below(match)) if match.is_dir() else [match]
    if not found:
      raise DataError(f"config.data.source: directory {part!r} holds no files")
    files.extend(found)
  return files


def _files_below(directory: epath.Path):
  # Not rglob: epath refuses `**` on Cloud Storage; nor walk, whose paths lose their gs://.
  for entry in directory.iterdir():
    if entry.is_dir():
      yield from _files_below(entry)
    else:
      yield entry


def read_documents(files: list[Path | epath.Path]) -> dict[str, str]:
  docs = {}
  for path in files:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
      try:
        raw = gzip.decompress(raw)
      except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a gzip file ({e})") from None
    try:
      text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
      # Real corpora hold the odd legacy-encoded file; losing a few bytes beats refusing a run.
      warnings.warn(f"{path}: not UTF-8 (byte {e.start}); undecodable bytes replaced",
                    stacklevel=2)
      text = raw.decode("utf-8", errors="replace")
    text = strip_gutenberg(text)
    if text:
      docs[str(path)] = text
  if not docs:
    raise DataError(f"config.data.source: every file is empty ({len(files)} files)")
  return docs


def split_documents(docs: dict[str, str], heldout_frac: float) -> tuple[list[str], list[str]]:
  """(train, heldout) texts.

  Whole documents are held out, chosen by a hash of their file name, so the split does not
  depend on file order, paths or machines. With too few documents for that (under 20, or the
  chosen ones far from `heldout_frac` of the text), the last `heldout_frac` of every document
  is held out instead, as nanoGPT does for a single file.
  """

  def bucket(name: str) -> float:
    return int(hashlib.sha256(Path(name).name.encode()).hexdigest()[:8], 16) / 16**8

  names = sorted(docs)
  if heldout_frac == 0:
    return [docs[n] for n in names], []
  heldout = [n for n in names if bucket(n) < heldout_frac]
  held_chars = sum(len(docs[n]) for n in heldout)
  total_chars = sum(len(docs[n]) for n in names)
  if len(names) >= 20 and 0 < held_chars <= 2 * heldout_frac * total_chars:
    return [docs[n] for n in names if n not in heldout], [docs[n] for n in heldout]
  cuts = {n: int(len(docs[n]) * (1 - heldout_frac)) for n in names}
  return ([docs[n][:cuts[n]] for n in names],
          [docs[n][cuts[n]:] for n in names if docs[n][cuts[n]:].strip()])


def read(source: str, data_config) -> dict[str, str]:
  """The `text:` source."""
  del data_config
  return read_documents(source_files(source))
