"""Input-pipeline throughput on CPU: tokenization, and batches/s once the text is tokenized.

  python benchmarks/data_pipeline.py                      # the embedded corpus
  python benchmarks/data_pipeline.py --source text:path/to/books --workers 2

Prints one JSON line per measurement. The pipeline must outrun the accelerator: GPT-2 124M
trains on about 0.5M tokens/s per H100, so the target is >= 1.5M tokens/s per host.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import grain
import numpy as np

from jaxlm.data import packing, pipeline, tokenizer
from jaxlm.data.sources import text as text_data


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--source", default="default")
  parser.add_argument("--vocab_size", type=int, default=8192)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--seq_len", type=int, default=1024)
  parser.add_argument("--batches", type=int, default=2000)
  parser.add_argument("--workers", type=int, default=0, help="grain worker processes")
  args = parser.parse_args()

  docs = list(text_data.read_documents(text_data.source_files(args.source)).values())
  chars = sum(map(len, docs))
  start = time.perf_counter()
  tok = tokenizer.train_tokenizer("bpe", docs, args.vocab_size)
  train_s = time.perf_counter() - start
  start = time.perf_counter()
  ids = pipeline.tokenize(tok, docs, tok.token_to_id(tokenizer.SEP))
  tokenize_s = time.perf_counter() - start
  n_tokens = sum(map(len, ids))
  start = time.perf_counter()
  rows = packing.pack(ids, args.seq_len, tok.token_to_id(tokenizer.PAD))
  pack_s = time.perf_counter() - start
  common = {"host": platform.processor() or platform.machine(), "source": args.source,
            "chars": chars, "tokens": n_tokens}
  print(json.dumps({**common, "stage": "train_tokenizer", "seconds": round(train_s, 2)}))
  print(json.dumps({**common, "stage": "tokenize", "tokens_per_s": round(n_tokens / tokenize_s)}))
  print(json.dumps({**common, "stage": "pack", "tokens_per_s": round(n_tokens / pack_s)}))

  ds = pipeline.batches(rows, args.batch_size, seed=0)
  if args.workers:
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=args.workers))
  it = iter(ds)
  for _ in range(20):  # warm-up (and worker start-up)
    next(it)
  start = time.perf_counter()
  for _ in range(args.batches):
    batch = next(it)
  seconds = time.perf_counter() - start
  assert batch["tokens"].shape == (args.batch_size, args.seq_len)
  tokens = args.batches * args.batch_size * args.seq_len
  print(json.dumps({**common, "stage": "batches", "workers": args.workers,
                    "batch": args.batch_size, "seq_len": args.seq_len,
                    "tokens_per_s": round(tokens / seconds), "batches_per_s": round(
                      args.batches / seconds, 1), "rows": len(rows),
                    "mean_row_fill": float(np.mean(rows.segment_ids > 0))}))


if __name__ == "__main__":
  main()
