"""The `jaxlm` command: `train` and `data prepare` (more subcommands arrive with later work)."""

from __future__ import annotations

import argparse
import os
import sys

from jaxlm.config import ConfigError, load_config

# Exit codes (documented in the README): scripts and schedulers act on them.
EXIT_BAD_INPUT = 2  # a bad config, data path or restore: fix the command
EXIT_NONFINITE = 3  # too many consecutive NaN/Inf steps: the run stopped, checkpoints are clean
EXIT_PREEMPTED = 75  # SIGTERM: a checkpoint was committed; rerun the same command to resume


def _split_overrides(argv: list[str]) -> tuple[list[str], dict[str, str]]:
  """Separates `--config.a.b=value` (or `--config.a.b value`) from the other arguments."""
  rest, overrides = [], {}
  i = 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith("--config."):
      key, eq, value = arg[len("--config."):].partition("=")
      if not eq:
        if i + 1 >= len(argv):
          raise ConfigError(f"{arg}: missing a value (write {arg}=VALUE)")
        value, i = argv[i + 1], i + 1
      overrides[key] = value
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


def _add_distributed(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group(
    "multi-process", "Cloud TPU VMs and SLURM are detected; elsewhere give all three")
  group.add_argument("--coordinator_address", help="HOST:PORT of process 0")
  group.add_argument("--num_processes", type=int)
  group.add_argument("--process_id", type=int)
  group.add_argument("--init_timeout", type=int, default=300,
                     help="seconds to wait for every process to join (default 300)")


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="jaxlm", description=__doc__)
  sub = parser.add_subparsers(dest="command", required=True)
  train = sub.add_parser("train", help="pre-train with the clm, mlm or prefix_lm objective",
                         epilog="Override any config field: --config.model.num_layers=2")
  train.add_argument("--config", required=True,
                     help="a shipped config name (tiny, gpt2_124m, ...) or a config file")
  train.add_argument("--workdir", required=True, help="run directory (resumed if it exists)")
  train.add_argument("--quiet", action="store_true", help="no progress bar")
  train.add_argument("--init_from", help="start from the parameters of another run directory")
  _add_distributed(train)
  ft = sub.add_parser("finetune", help="fine-tune a pre-trained run on a task (GLUE, goemotions_sentiment)",
                      epilog="Override the recipe: --config.finetune.lr=5e-5")
  ft.add_argument("--init", required=True,
                  help="a jaxlm run or a Hugging Face BERT / GPT-2 directory (safetensors)")
  ft.add_argument("--task", required=True, help="goemotions_sentiment (shipped) or a GLUE task: "
                  "cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli")
  ft.add_argument("--glue_dir", default=os.environ.get("GLUE_DIR", ""),
                  help="GLUE in the official TSV layout, or tfds:DATA_DIR for TFDS glue/<task> "
                  "(default $GLUE_DIR; shipped tasks need none)")
  ft.add_argument("--workdir", required=True, help="where results.json and predictions go")
  ft.add_argument("--epochs", type=int)
  ft.add_argument("--max_train_examples", type=int)
  ft.add_argument("--seeds", type=int)
  _add_distributed(ft)
  for name, help_text, default, shipped, example in (
      ("compare", "pre-train each objective, fine-tune on GLUE, report", "compare/tiny",
       "compare/tiny, compare/bert_small", "--config.pretrain.steps=1000 --config.tasks=sst2,cola"),
      ("scale", "scaling laws per objective: a grid of sizes, power-law fits, downstream quality "
       "per FLOP", "scale/tiny", "scale/tiny, scale/gpu",
       "--config.depths=1,2,3 --config.tokens=1e6,2e6")):
    grid = sub.add_parser(name, help=help_text, epilog=f"Override: {example}")
    grid.add_argument("--config", default=default,
                      help=f"a shipped config name ({shipped}) or a file")
    grid.add_argument("--workdir", required=True)
    grid.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_distributed(grid)
  bench = sub.add_parser("bench", help="time training steps on synthetic data (tokens/s, MFU)",
                         epilog="Override any config field: --config.batch_size=32")
  bench.add_argument("--config", required=True,
                     help="a shipped config name (gpt2_124m, bert_base, ...) or a config file")
  bench.add_argument("--steps", type=int, default=20, help="timed steps")
  bench.add_argument("--warmup", type=int, default=3, help="untimed steps first; the first compiles")
  gen = sub.add_parser("generate", help="continue a prompt with a CLM model (KV cache)")
  gen.add_argument("--workdir", required=True, help="a jaxlm run or a Hugging Face GPT-2 directory")
  gen.add_argument("--prompt", required=True, action="append", help="repeat for a batch")
  gen.add_argument("--max_new_tokens", type=int, default=50)
  gen.add_argument("--temperature", type=float, default=0.8, help="0: greedy")
  gen.add_argument("--top_k", type=int, default=50, help="0: off")
  gen.add_argument("--top_p", type=float, default=1.0, help="1: off")
  gen.add_argument("--seed", type=int, default=0)
  fill = sub.add_parser("fill-mask", help="top tokens for [MASK] with an MLM model")
  fill.add_argument("--workdir", required=True, help="a jaxlm run or a Hugging Face BERT directory")
  fill.add_argument("--text", required=True, help='e.g. "The [MASK] sat on the mat."')
  fill.add_argument("--top_k", type=int, default=5)
  export = sub.add_parser("export", help="write a run as a Hugging Face model directory")
  export.add_argument("--workdir", required=True, help="a jaxlm run directory")
  export.add_argument("--format", choices=["hf"], default="hf")
  export.add_argument("--out", required=True)
  ev = sub.add_parser("eval", help="zero-shot evaluation of a run (BLiMP minimal pairs)")
  ev.add_argument("--workdir", required=True, help="a jaxlm run or a Hugging Face directory")
  ev.add_argument("--task", required=True, choices=["blimp"])
  ev.add_argument("--paradigms", default="", help="comma-separated BLiMP paradigms (default: all 67)")
  ev.add_argument("--per_paradigm", type=int, default=100,
                  help="fixed subsample of pairs per paradigm; 0: all 1,000")
  ev.add_argument("--no_floor", action="store_true",
                  help="skip the unigram floor (it reads the run's pre-training text)")
  data = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command",
                                                                   required=True)
  prepare = data.add_parser("prepare", help="turn local text into a TFDS dataset (array_record)")
  prepare.add_argument("--source", required=True, help="text:PATH[,PATH...]")
  prepare.add_argument("--name", required=True, help="dataset name, e.g. my_books")
  prepare.add_argument("--data_dir", required=True, help="TFDS data dir (local or gs://)")
  prepare.add_argument("--overwrite", action="store_true", help="rebuild an existing dataset")
  return parser


def _finetune(args, overrides: dict[str, str]) -> int:
  from jaxlm.eval import finetune, tasks
  for flag in ("epochs", "max_train_examples", "seeds"):
    if getattr(args, flag) is not None:
      overrides[f"finetune.{flag}"] = str(getattr(args, flag))
  tasks.get(args.task, "finetune")  # a bad name fails before anything loads
  config, recipe, params, tok = finetune.load_init(args.init, overrides)
  results = finetune.run(config, recipe, args.task, args.glue_dir or None, args.workdir, params,
                         tok, init=args.init)
  for split, metrics in results["summary"].items():
    shown = ", ".join(f"{k} {v['median']:.1f} [{v['min']:.1f}-{v['max']:.1f}]"
                      for k, v in metrics.items())
    print(f"{results['task']} {split}: {shown} (median [min-max] of {recipe.seeds} "
          "seeds)")
  return 0


def _train(args, config) -> int:
  from jaxlm.train.loop import NonFiniteLoss, Preempted, train
  try:
    train(config, args.workdir, quiet=args.quiet)
  except Preempted as e:
    print(f"jaxlm: {e}", file=sys.stderr)
    return EXIT_PREEMPTED
  except NonFiniteLoss as e:
    print(f"jaxlm: error: {e}", file=sys.stderr)
    return EXIT_NONFINITE
  return 0


def _inference(args, overrides: dict[str, str]) -> int:
  """bench, generate, fill-mask and export: one process, no training loop."""
  import json
  if args.command == "bench":
    from jaxlm.train.bench import bench
    config = load_config(args.config, overrides)
    print(json.dumps(bench(config, args.steps, args.warmup, name=args.config)))
    return 0
  from jaxlm import api
  loaded = api.load(args.workdir)
  if args.command == "export":
    from jaxlm.interop import hf_export
    hf_export.to_hf(loaded.config, loaded.params, args.out, loaded.tokenizer)
    print(f"exported {args.workdir} to {args.out} (Hugging Face format)")
  elif args.command == "fill-mask":
    for token, prob in api.fill_mask(loaded, args.text, args.top_k):
      print(f"{prob:.4f}\t{token}")
  else:
    for text in api.generate_text(loaded, args.prompt, args.max_new_tokens, args.temperature,
                                  args.top_k, args.top_p, args.seed):
      print(text)
  return 0


def _eval(args) -> int:
  """`jaxlm eval --task blimp`: prints overall and per-phenomenon accuracy, writes blimp.json."""
  import json
  from jaxlm import api, storage
  from jaxlm.eval import blimp_data
  from jaxlm.eval.tasks import blimp
  paradigms = [p for p in args.paradigms.split(",") if p] or None
  try:
    blimp_data.load_pairs(paradigms, args.per_paradigm or None)  # bad names fail before loading
  except ValueError as e:
    raise ConfigError(f"--paradigms: {e}") from None
  loaded = api.load(args.workdir)
  if loaded.tokenizer is None:
    raise ConfigError(f"--workdir {args.workdir}: holds no tokenizer")
  train_texts = None
  if not args.no_floor and (storage.path(args.workdir) / "checkpoints").is_dir():
    from jaxlm.data import sources
    from jaxlm.data.sources.text import split_documents
    train_texts = split_documents(sources.read_source(loaded.config),
                                  loaded.config.data.heldout_frac)[0]
  result = blimp.evaluate(loaded, paradigms, args.per_paradigm or None, train_texts)
  low, high = result["interval"]
  floor = result.get("unigram_floor", {}).get("overall")
  print(f"BLiMP {result['pairs']} pairs: {result['overall']:.1f} [{low:.1f}, {high:.1f}]"
        + (f"; unigram floor {floor:.1f}" if floor is not None else ""))
  for name, value in result["per_phenomenon"].items():
    print(f"  {name}: {value:.1f}")
  out = storage.path(args.workdir) / "blimp.json"
  storage.write_atomic(out, json.dumps(result, indent=1))
  print(f"wrote {out}")
  return 0


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  try:
    rest, overrides = _split_overrides(argv)
    args = _parser().parse_args(rest)
    # Heavy modules load late, and configs are validated before a process joins a job or
    # compiles anything: `--help` and config errors stay instant.
    if args.command == "data":
      from jaxlm.data.prepare import prepare
      path = prepare(args.source, args.name, args.data_dir, overwrite=args.overwrite)
      print(f"prepared tfds:{args.name} in {path}; train on it with "
            f"--config.data.source=tfds:{args.name} --config.data.tfds_data_dir={args.data_dir}")
      return 0
    if args.command == "eval":
      return _eval(args)
    if args.command in ("bench", "generate", "fill-mask", "export"):
      return _inference(args, overrides)
    config = None
    if args.command == "train":
      if args.init_from:
        overrides["init_from"] = args.init_from
      config = load_config(args.config, overrides)
    elif args.command == "compare":
      from jaxlm.eval.compare import CompareConfig
      config = load_config(args.config, overrides, expected=CompareConfig)
    elif args.command == "scale":
      from jaxlm.eval.scale import ScaleConfig
      config = load_config(args.config, overrides, expected=ScaleConfig)
    from jaxlm import distributed
    distributed.initialize(args.coordinator_address, args.num_processes, args.process_id,
                           args.init_timeout)
    if args.command == "finetune":
      return _finetune(args, overrides)
    if args.command == "compare":
      from jaxlm.eval import compare
      compare.run(config, args.workdir, quiet=args.quiet)
      print(f"jaxlm compare: report in {args.workdir}/report.md")
      return 0
    if args.command == "scale":
      from jaxlm.eval import scale
      scale.run(config, args.workdir, quiet=args.quiet)
      print(f"jaxlm scale: report in {args.workdir}/scale.md")
      return 0
    return _train(args, config)
  except ConfigError as e:
    print(f"jaxlm: error: {e}", file=sys.stderr)
    return EXIT_BAD_INPUT


if __name__ == "__main__":
  sys.exit(main())
