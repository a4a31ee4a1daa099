"""Regenerate the embedded default corpus (jaxlm/corpus) from public-domain sources.

  python tools/build_corpus.py BOOKS_DIR INAUGURAL_DIR [--out jaxlm/corpus] [--every 4]

BOOKS_DIR holds Project Gutenberg books as committed in rcdm-uga/Gutenberg_Text (its
SOURCES.md table gives each file's repository path, commit and blob; the rows of the chosen
books are copied into the output's SOURCES.md). INAUGURAL_DIR holds NLTK's inaugural corpus.

Chosen books: every `--every`-th file in name order (a spread over the authors), plus the four
books the corpus held before. Each is normalised for language modelling and written gzipped:
  * the Project Gutenberg licence header and footer are dropped, and so is every paragraph
    naming Project Gutenberg (producer credits, PG notes): the text is public domain, and PG's
    trademark covers only the PG-branded files;
  * CRLF becomes LF; hard-wrapped lines inside a paragraph are joined with one space, so a
    sentence is never split by a line break; paragraphs stay separated by one blank line.
Inaugural addresses get the same normalisation. Outputs are byte-reproducible (gzip level 9,
mtime 0, no file name in the header).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))
from jaxlm.data.sources.text import strip_gutenberg  # noqa: E402

KEEP = ("austen-pride_and_prejudice.txt", "baum-the_wonderful_wizard_of_oz.txt",
        "burnett-the_secret_garden.txt", "carroll-through_the_looking_glass.txt")


_OLD_HEADER_END = re.compile(r"^.*\*END\*THE SMALL PRINT.*$", re.M)  # pre-2000s PG header


def normalise(text: str) -> str:
  text = strip_gutenberg(text.replace("\r\n", "\n").replace("\r", "\n"))
  old = _OLD_HEADER_END.search(text)
  if old:
    text = text[old.end():]
  paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
  # Producer credits and PG notes ("E-text prepared by ... Project Gutenberg ...") are not
  # part of the work.
  return "\n\n".join(p for p in paragraphs if p and "gutenberg" not in p.lower()) + "\n"


def write_gz(path: Path, text: str) -> None:
  buffer = io.BytesIO()
  with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buffer, mtime=0) as f:
    f.write(text.encode("utf-8"))
  path.write_bytes(buffer.getvalue())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("books", type=Path)
  parser.add_argument("inaugural", type=Path)
  parser.add_argument("--out", type=Path, default=Path("jaxlm/corpus"))
  parser.add_argument("--every", type=int, default=4)
  args = parser.parse_args()
  names = sorted(p.name for p in args.books.glob("*.txt"))
  chosen = sorted(set(names[::args.every]) | set(KEEP))
  rows = {line.split("|")[1].strip(): line for line in
          (args.books / "SOURCES.md").read_text().splitlines() if line.startswith("| ")}
  table = []
  for sub in ("books", "inaugural"):
    (args.out / sub).mkdir(parents=True, exist_ok=True)
    for old in (args.out / sub).glob("*"):
      old.unlink()
  raw_total = 0
  for name in chosen:
    raw = (args.books / name).read_bytes()
    text = normalise(raw.decode("utf-8", errors="replace"))
    raw_total += len(text.encode())
    write_gz(args.out / "books" / f"{name}.gz", text)
    table.append((name, hashlib.sha256(raw).hexdigest()[:16], len(text.encode()), rows[name]))
  for path in sorted(args.inaugural.glob("*.txt")):
    try:
      text = normalise(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
      print(f"skipped {path.name}: not UTF-8", file=sys.stderr)
      continue
    raw_total += len(text.encode())
    write_gz(args.out / "inaugural" / f"{path.name}.gz", text)
  packed = sum(p.stat().st_size for p in args.out.rglob("*.gz"))
  print(f"{len(chosen)} books + inaugural: {raw_total / 1e6:.1f} MB of text, "
        f"{packed / 1e6:.1f} MB gzipped")
  with (args.out / "books.tsv").open("w") as f:
    f.write("file\tsource sha256 (first 16)\tnormalised bytes\n")
    for name, sha, size, _ in table:
      f.write(f"{name}.gz\t{sha}\t{size}\n")
  # The rows for SOURCES.md (written beside it; SOURCES.md is assembled by hand from it).
  (args.out / "books_sources.md").write_text(
    "| file (source name; shipped gzipped and normalised) | source repo | path in source repo | "
    "commit | blob | bytes | lines (`wc -l`) | sha256 (first 16) | title | author | licence |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(r for *_, r in table) + "\n")


if __name__ == "__main__":
  main()
