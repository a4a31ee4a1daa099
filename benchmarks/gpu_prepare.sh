#!/usr/bin/env bash
# Makes, on any machine with network access, what benchmarks/gpu_run.sh takes along to a GPU
# machine that has none, and checks that the lot fits the 64 MiB the checkout may weigh there:
#   .whl/               grain, tensorflow-datasets, tensorboardX, ... as Python 3.12 x86-64
#                       wheels (../shared/tools/device-wheels), for a machine that has JAX,
#                       Flax, optax, orbax, tokenizers, torch and transformers but not these;
#   .gpu/corpus.tar.xz  the 195 Project Gutenberg books (../shared/data/corpus/gutenberg-books,
#                       public domain; its SOURCES.md rides along, outside the text folder);
#   .gpu/commit.txt     the commit and the uncommitted changes the run is made from.
# Both folders are git-ignored: name them in what travels with the checkout (.whl, .gpu).
#
#   bash benchmarks/gpu_prepare.sh            # FORCE=1 remakes what already exists
# Run it again just before a GPU run: with the wheels and the corpus there, it only refreshes
# .gpu/commit.txt (a second) and checks the size.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
SHARED=${SHARED:-$REPO/../shared}
BOOKS=$SHARED/data/corpus/gutenberg-books
LIMIT_MIB=64

if [ "${FORCE:-0}" = 1 ] || ! compgen -G ".whl/grain-*.whl" >/dev/null \
   || ! compgen -G ".whl/tensorboardx-*.whl" >/dev/null; then
  bash "$SHARED/tools/device-wheels"                # its default list (grain, tfds, ...)
  bash "$SHARED/tools/device-wheels" tensorboardX   # jaxlm's metrics writer
fi

mkdir -p .gpu
if [ "${FORCE:-0}" = 1 ] || [ ! -f .gpu/corpus.tar.xz ]; then
  [ -d "$BOOKS" ] || { echo "no $BOOKS" >&2; exit 2; }
  echo "packing $BOOKS (xz -9: about 2 minutes on 2 cores)"
  # Only the books inside gutenberg-books/: a text: source reads every file of its folder.
  tar -C "$(dirname "$BOOKS")" --sort=name --owner=0 --group=0 --mtime=2000-01-01 \
      --transform='s,^gutenberg-books/SOURCES.md$,SOURCES-gutenberg-books.md,' \
      -cf - gutenberg-books | xz -9 -T0 >.gpu/corpus.tar.xz.tmp
  mv .gpu/corpus.tar.xz.tmp .gpu/corpus.tar.xz
fi
count=$(tar -tJf .gpu/corpus.tar.xz | grep -c '^gutenberg-books/.*\.txt$')
echo ".gpu/corpus.tar.xz: $count books"
{ git rev-parse HEAD; git status --short; } >.gpu/commit.txt

# What travels: tracked and untracked-not-ignored files, plus the carried folders.
checkout=$(git ls-files -z --cached --others --exclude-standard \
           | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}')
whl=$(du -sb .whl | cut -f1)
gpu=$(du -sb .gpu | cut -f1)
total=$(( checkout + whl + gpu ))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
echo "checkout $(mib "$checkout") MiB + .whl $(mib "$whl") MiB + .gpu $(mib "$gpu") MiB" \
     "= $(mib "$total") MiB of $LIMIT_MIB"
echo "carry: .whl .gpu"
if [ "$total" -gt $(( LIMIT_MIB * 1048576 )) ]; then
  echo "over $LIMIT_MIB MiB: carry less" >&2
  exit 1
fi
