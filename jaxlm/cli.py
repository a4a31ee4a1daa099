"""The `jaxlm` command: train, finetune, compare, scale, eval, lm-eval, bench, generate,
fill-mask, export and data prepare.

Each subcommand is a parser (`_commands`) and a handler (`_handlers`); `main` splits the
`--config.a.b=value` overrides off, parses, and calls the handler, which loads and preflights
its config before it imports anything heavy, joins a multi-process job, takes its workdir and
runs. Heavy modules load inside the handlers, so `--help` and config errors stay instant.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys

from jaxlm.config import ConfigError, load_config

# Exit codes (documented in the README): scripts and schedulers act on them.
EXIT_BAD_INPUT = 2  # a bad config, data path, restore or busy workdir: fix the command
EXIT_NONFINITE = 3  # too many consecutive NaN/Inf steps: the run stopped, checkpoints are clean
EXIT_PREEMPTED = 75  # SIGTERM: a checkpoint was committed; rerun the same command to resume
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT): in training a checkpoint was committed first
EXIT_BROKEN_PIPE = 141  # stdout closed early (128 + SIGPIPE), e.g. `jaxlm eval ... | head -1`


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


def _join(args) -> None:
  """Joins the multi-process job the flags (or the environment) describe, if any."""
  from jaxlm import distributed
  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id,
                         args.init_timeout)


@contextlib.contextmanager
def _owned(workdir: str, command: str):
  """Holds `workdir` for this command (process 0 takes the lease for the whole job); a workdir
  another live process holds, or one that cannot be created, is refused in one line."""
  import jax
  import numpy as np

  from jaxlm.lease import Lease
  lease, error = Lease(workdir, command=command, holder=jax.process_index() == 0), None
  try:
    lease.__enter__()
  except ConfigError as e:
    error = e
  if jax.process_count() > 1:  # every process stops if process 0 could not take it
    from jax.experimental import multihost_utils
    if not int(multihost_utils.broadcast_one_to_all(np.int32(error is None))) and error is None:
      error = ConfigError(f"--workdir {workdir}: refused on process 0 (see its error)")
  if error is not None:
    raise error
  try:
    yield
  finally:
    lease.__exit__(None, None, None)


def _train(args, overrides: dict[str, str]) -> int:
  from jaxlm import preflight
  if args.init_from:
    overrides["init_from"] = args.init_from
  config = preflight.pretrain_config(load_config(args.config, overrides))
  from jaxlm.interop import hf_export
  if reason := hf_export.export_blocker(config):  # known now, not when the run is exported
    print(f"jaxlm: note: this run will not export to transformers: {reason}", file=sys.stderr)
  _join(args)
  import jax

  from jaxlm.train.loop import NonFiniteLoss, Preempted, train
  try:
    with _owned(args.workdir, "train"):
      result = train(config, args.workdir, quiet=args.quiet)
  except Preempted as e:
    print(f"jaxlm: {e}", file=sys.stderr)
    return EXIT_INTERRUPTED if e.signum == signal.SIGINT else EXIT_PREEMPTED
  except NonFiniteLoss as e:
    print(f"jaxlm: error: {e}", file=sys.stderr)
    return EXIT_NONFINITE
  if jax.process_index() == 0:
    print(_train_summary(result, args.workdir))
  return 0


def _train_summary(result: dict, workdir: str) -> str:
  """One line: the step, the final held-out metrics and where the checkpoint is."""
  shown = {"loss": "loss {:.4f}", "perplexity": "perplexity {:.2f}",
           "bits_per_byte": "{:.3f} bits/byte", "bits_per_byte_bound": "<= {:.3f} bits/byte",
           "accuracy": "accuracy {:.1%}"}
  held_out = ", ".join(form.format(result["eval"][key]) for key, form in shown.items()
                       if result["eval"].get(key) is not None)
  return (f"jaxlm train: step {result['step']}; held-out {held_out}; checkpoint "
          f"{workdir}/checkpoints/{result['step']}")


def _finetune(args, overrides: dict[str, str]) -> int:
  for flag in ("epochs", "max_train_examples", "seeds"):
    if getattr(args, flag) is not None:
      overrides[f"finetune.{flag}"] = str(getattr(args, flag))
  from jaxlm.eval import tasks
  tasks.get(args.task, "finetune")  # a bad name fails before anything loads
  _join(args)
  from jaxlm.finetune import trainer
  config, recipe, params, tok = trainer.load_init(args.init, overrides)
  with _owned(args.workdir, "finetune"):
    results = trainer.run(config, recipe, args.task, args.glue_dir or None, args.workdir,
                          params, tok, init=args.init, progress=True)
  for split, metrics in results["summary"].items():
    shown = ", ".join(f"{k} {v['median']:.1f} [{v['min']:.1f}-{v['max']:.1f}]"
                      for k, v in metrics.items())
    print(f"{results['task']} {split}: {shown} (median [min-max] of {recipe.seeds} seeds)")
  return 0


def _study(args, overrides: dict[str, str]) -> int:
  """compare and scale: load, preflight (values, registries, task data), run, point at the
  report."""
  from jaxlm.studies.config import CompareConfig, ScaleConfig
  expected, report = {"compare": (CompareConfig, "report.md"),
                      "scale": (ScaleConfig, "scale.md")}[args.command]
  config = load_config(args.config, overrides, expected=expected)
  if args.command == "compare":
    from jaxlm.studies import compare as study
  else:
    from jaxlm.studies import scale as study
  study.check(config)
  if args.command == "compare":  # the runs that will not export, known now
    from jaxlm.interop import hf_export
    from jaxlm.studies import variants
    for name in config.objectives:
      if reason := hf_export.export_blocker(variants.pretrain_config(config.pretrain, name)):
        print(f"jaxlm: note: the {name} runs will not export to transformers: {reason}",
              file=sys.stderr)
  _join(args)
  with _owned(args.workdir, args.command):
    study.run(config, args.workdir, quiet=args.quiet)
  print(f"jaxlm {args.command}: report in {args.workdir}/{report}")
  return 0


def _eval(args, overrides: dict[str, str]) -> int:
  """`jaxlm eval --task NAME`: any zero-shot task of the registry; prints the overall score
  with its interval, the references and each group's score, and writes TASK.json."""
  from jaxlm.eval import tasks
  task = tasks.get(args.task, "zero_shot")
  groups = tuple(g for g in args.groups.split(",") if g)
  task.check(args.sample, groups)  # bad options fail before anything loads
  from jaxlm import api, storage
  from jaxlm.data import pipeline
  mesh = api.scoring_mesh(args.mesh)
  model = api.on_mesh(dataclasses.replace(api.load(args.workdir), scoring=args.scoring), mesh)
  if model.tokenizer is None:
    raise ConfigError(f"--workdir {args.workdir}: holds no tokenizer")
  ids = None
  if not args.no_reference and (storage.path(args.workdir) / "checkpoints").is_dir():
    ids = pipeline.training_token_ids(pipeline.load(model.config, lambda _: model.tokenizer),
                                      model.tokenizer)
  result = task.evaluate(model, sample=args.sample, groups=groups, train_ids=ids, progress=True)
  result["options"] = {"sample": args.sample, "groups": list(groups), "scoring": args.scoring}
  low, high = result["interval"]
  refs = "".join(f"; {name} {ref['overall']:.1f}" for name, ref in result["references"].items())
  print(f"{task.name} {result['items']} items: {result['overall']:.1f} [{low:.1f}, {high:.1f}]"
        + refs)
  for name, value in result["groups"].items():
    print(f"  {name}: {value:.1f}")
  suffix = "" if args.scoring == "auto" else f"-{args.scoring}"
  out = storage.path(args.workdir) / f"{task.name}{suffix}.json"
  storage.write_atomic(out, json.dumps(result, indent=1))
  print(f"wrote {out}")
  return 0


def _lm_eval(args, overrides: dict[str, str]) -> int:
  """`jaxlm lm-eval HARNESS_FLAGS`: lm-evaluation-harness's own command line, with the model
  type `jaxlm` registered and filled in."""
  try:
    from lm_eval.__main__ import cli_evaluate

    import jaxlm.eval.lm_eval_model  # noqa: F401 - registers the model type "jaxlm"
  except ModuleNotFoundError as e:
    if (e.name or "").split(".")[0] != "lm_eval":
      raise
    print("jaxlm lm-eval: needs the lmeval extra: pip install 'jaxlm[lmeval]'", file=sys.stderr)
    return EXIT_BAD_INPUT
  if overrides or not args.harness_args or any(
      a.split("=")[0] in ("--model", "-M") for a in args.harness_args):
    raise ConfigError("lm-eval: give the harness's own flags and no --model or --config.*, e.g. "
                      "jaxlm lm-eval --model_args path=RUN --tasks lambada_openai")
  argv, sys.argv = sys.argv, ["lm-eval", "run", "--model", "jaxlm", *args.harness_args]
  try:
    cli_evaluate()
  finally:
    sys.argv = argv
  return 0


def _bench(args, overrides: dict[str, str]) -> int:
  from jaxlm import preflight
  config = preflight.pretrain_config(load_config(args.config, overrides))
  from jaxlm.train.bench import bench
  print(json.dumps(bench(config, args.steps, args.warmup, name=args.config)))
  return 0


def _generate(args, overrides: dict[str, str]) -> int:
  from jaxlm import api
  for text in api.generate_text(api.load(args.workdir), args.prompt, args.max_new_tokens,
                                args.temperature, args.top_k, args.top_p, args.seed,
                                args.steps):
    print(text)
  return 0


def _fill_mask(args, overrides: dict[str, str]) -> int:
  from jaxlm.data.special_tokens import MASK
  if MASK not in args.text:  # fails before the model loads
    raise ConfigError(f"fill-mask: --text {args.text!r} holds no {MASK} token; write {MASK} "
                      "where the word to predict goes")
  from jaxlm import api
  for token, prob in api.fill_mask(api.load(args.workdir), args.text, args.top_k):
    print(f"{prob:.4f}\t{token}")
  return 0


def _export(args, overrides: dict[str, str]) -> int:
  from jaxlm import api, preflight
  from jaxlm.finetune import saved
  from jaxlm.interop import hf_export
  preflight.output_dir(args.out, "--out")
  if saved.is_saved(args.workdir):  # a fine-tuning run: the classifier it kept
    from flax import nnx

    from jaxlm.eval import tasks
    from jaxlm.interop import hf_classifier
    kept = saved.load(args.workdir)
    task = tasks.get(kept.meta["task"], "finetune")
    hf_classifier.classifier_to_hf(kept.config, nnx.state(kept.model), kept.meta, args.out,
                               kept.tokenizer,
                               labels=getattr(task, "label_meanings", task.label_names),
                               pairs=len(getattr(task, "text_columns", ("text",))) > 1)
    print(f"exported the {task.name} classifier of {args.workdir} (seed {kept.meta['seed']}) "
          f"to {args.out}: config.json, model.safetensors and a tokenizer that adds [CLS] and "
          "[SEP]; load it with AutoModelForSequenceClassification")
    return 0
  model = api.load(args.workdir)
  hf_export.to_hf(model.config, model.params, args.out, model.tokenizer)
  print(f"exported {args.workdir} to {args.out} (Hugging Face format)")
  return 0


def _prepare(args, overrides: dict[str, str]) -> int:
  from jaxlm.data.prepare import prepare
  path = prepare(args.source, args.name, args.data_dir, overwrite=args.overwrite)
  print(f"prepared tfds:{args.name} in {path}; train on it with "
        f"--config.data.source=tfds:{args.name} --config.data.tfds_data_dir={args.data_dir}")
  return 0


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """Shows each flag's default where it has one (not after required, unset or on/off flags)."""

  def _get_help_string(self, action):
    if action.required or action.default in (None, "") or action.nargs == 0:
      return action.help
    return super()._get_help_string(action)


def _add_distributed(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group(
    "multi-process", "Cloud TPU VMs and SLURM are detected; elsewhere give all three")
  group.add_argument("--coordinator_address", help="HOST:PORT of process 0")
  group.add_argument("--num_processes", type=int)
  group.add_argument("--process_id", type=int)
  group.add_argument("--init_timeout", type=int, default=300,
                     help="seconds to wait for every process to join (default: %(default)s)")


def _commands(sub) -> None:
  """Every subcommand's arguments, and its handler."""
  train = sub.add_parser("train", help="pre-train one objective (clm, mlm, mlm_nsp, prefix_lm, mntp, "
                         "hybrid, clm_then_mlm, mdlm)",
                         epilog="Override any config field: --config.model.num_layers=2")
  train.add_argument("--config", required=True,
                     help="a shipped config name (tiny, gpt2_124m, ...), a config file defining "
                     "get_config(), or a run's config.json (re-runs that run; also .yaml)")
  train.add_argument("--workdir", required=True, help="run directory (resumed if it exists)")
  train.add_argument("--quiet", action="store_true", help="no progress bar")
  train.add_argument("--init_from", help="start from the parameters of another run directory")
  _add_distributed(train)
  train.set_defaults(handler=_train)

  ft = sub.add_parser("finetune", help="fine-tune a run on a task (goemotions_sentiment, GLUE)",
                      epilog="Override the recipe: --config.finetune.lr=5e-5",
                      formatter_class=_DefaultsFormatter)
  ft.add_argument("--init", required=True,
                  help="a jaxlm run or a Hugging Face BERT / GPT-2 directory (safetensors)")
  ft.add_argument("--task", required=True, help="a fine-tuning task of jaxlm.eval.tasks: "
                  "goemotions_sentiment (shipped) or a GLUE task (cola, sst2, mrpc, ...)")
  ft.add_argument("--glue_dir", default=os.environ.get("GLUE_DIR", ""),
                  help="GLUE in the official TSV layout, or tfds:DATA_DIR for TFDS glue/<task> "
                  "($GLUE_DIR; shipped tasks need none)")
  ft.add_argument("--workdir", required=True, help="where results.json and predictions go")
  from jaxlm.finetune.config import FinetuneConfig
  recipe = FinetuneConfig()  # unset flags leave the recipe's values (and its overrides) alone
  ft.add_argument("--epochs", type=int, help="passes over the training split "
                  f"(default: the recipe's, {recipe.epochs})")
  ft.add_argument("--max_train_examples", type=int, help="cap on training examples; 0: all "
                  f"(default: the recipe's, {recipe.max_train_examples})")
  ft.add_argument("--seeds", type=int, help="fine-tuning seeds; the median and range are "
                  f"reported (default: the recipe's, {recipe.seeds})")
  _add_distributed(ft)
  ft.set_defaults(handler=_finetune)

  for name, help_text, default, shipped, example in (
      ("compare", "pre-train each objective, score it zero-shot, fine-tune it, report",
       "compare/tiny", "compare/tiny, compare/medium, compare/bert_small, compare/gpu",
       "--config.pretrain.steps=1000 --config.objectives=mlm,clm,prefix_lm"),
      ("scale", "scaling laws per objective: a grid of sizes, power-law fits, downstream quality "
       "per FLOP", "scale/tiny", "scale/tiny, scale/gpu",
       "--config.depths=1,2,3 --config.tokens=1e6,2e6")):
    study = sub.add_parser(name, help=help_text, epilog=f"Override: {example}")
    study.add_argument("--config", default=default,
                       help=f"a shipped config name ({shipped}) or a file (default {default})")
    study.add_argument("--workdir", required=True)
    study.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_distributed(study)
    study.set_defaults(handler=_study)

  ev = sub.add_parser("eval", help="zero-shot evaluation of a run (BLiMP minimal pairs, ...)",
                      formatter_class=_DefaultsFormatter)
  ev.add_argument("--workdir", required=True, help="a jaxlm run or a Hugging Face directory")
  ev.add_argument("--task", required=True, help="a zero-shot task of jaxlm.eval.tasks (blimp, zorro)")
  ev.add_argument("--groups", "--paradigms", default="",
                  help="comma-separated groups of the task (BLiMP: paradigms); empty: all")
  ev.add_argument("--sample", "--per_paradigm", type=int, default=100,
                  help="a fixed subsample of items per group; 0: all")
  ev.add_argument("--no_reference", "--no_floor", action="store_true",
                  help="skip the references fitted on the run's pre-training text")
  ev.add_argument("--scoring", choices=("auto", "causal", "pll"), default="auto",
                  help="how a sentence is scored: auto (causal where the model generates, else "
                       "pseudo-log-likelihood); pll also reads the hybrid's masked rows")
  ev.add_argument("--mesh", default="auto",
                  help="devices to score on: auto (all of this process's, rows sharded, when "
                       "there are several), none, data, fsdp, or DATA,FSDP,TENSOR sizes")
  ev.set_defaults(handler=_eval)

  # Everything after the command is the harness's: "+" prefixes keep argparse off its flags.
  lm = sub.add_parser("lm-eval", prefix_chars="+", add_help=False,
                      help="EleutherAI's lm-evaluation-harness on a run (the lmeval extra; "
                      "harness flags: --model_args path=RUN --tasks ...)")
  lm.add_argument("harness_args", nargs=argparse.REMAINDER)
  lm.set_defaults(handler=_lm_eval)

  bench = sub.add_parser("bench", help="time training steps on synthetic data (tokens/s, MFU)",
                         epilog="Override any config field: --config.batch_size=32")
  bench.add_argument("--config", required=True,
                     help="a shipped config name (gpt2_124m, bert_base, ...) or a config file")
  bench.add_argument("--steps", type=int, default=20, help="timed steps")
  bench.add_argument("--warmup", type=int, default=3, help="untimed steps first; the first compiles")
  bench.set_defaults(handler=_bench)

  gen = sub.add_parser("generate", help="continue a prompt (CLM: KV cache; mdlm: unmasking)",
                       formatter_class=_DefaultsFormatter)
  gen.add_argument("--workdir", required=True, help="a jaxlm run or a Hugging Face GPT-2 directory")
  gen.add_argument("--prompt", required=True, action="append", help="repeat for a batch")
  gen.add_argument("--max_new_tokens", type=int, default=50,
                   help="the prompt's tokens plus these must fit the model's max_seq_len")
  gen.add_argument("--temperature", type=float, default=0.8, help="0: greedy")
  gen.add_argument("--top_k", type=int, default=50, help="0: off")
  gen.add_argument("--top_p", type=float, default=1.0, help="1: off")
  gen.add_argument("--seed", type=int, default=0, help="of the sampling")
  gen.add_argument("--steps", type=int, default=None,
                   help="mdlm: unmasking steps (default: max_new_tokens)")
  gen.set_defaults(handler=_generate)

  fill = sub.add_parser("fill-mask", help="top tokens for [MASK] with an MLM model",
                        formatter_class=_DefaultsFormatter)
  fill.add_argument("--workdir", required=True, help="a jaxlm run or a Hugging Face BERT directory")
  fill.add_argument("--text", required=True, help='e.g. "The [MASK] sat on the mat."')
  fill.add_argument("--top_k", type=int, default=5, help="how many tokens to list")
  fill.set_defaults(handler=_fill_mask)

  export = sub.add_parser("export", help="write a run (or a fine-tuned classifier) as a Hugging "
                          "Face model directory")
  export.add_argument("--workdir", required=True,
                      help="a jaxlm run directory, or a `jaxlm finetune` directory (its kept "
                           "classifier)")
  export.add_argument("--format", choices=["hf"], default="hf")
  export.add_argument("--out", required=True)
  export.set_defaults(handler=_export)

  data = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command",
                                                                   required=True)
  prepare = data.add_parser("prepare", help="turn local text into a TFDS dataset (array_record)")
  prepare.add_argument("--source", required=True, help="text:PATH[,PATH...]")
  prepare.add_argument("--name", required=True, help="dataset name, e.g. my_books")
  prepare.add_argument("--data_dir", required=True, help="TFDS data dir (local or gs://)")
  prepare.add_argument("--overwrite", action="store_true", help="rebuild an existing dataset")
  prepare.set_defaults(handler=_prepare)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="jaxlm", description=__doc__.split("\n\n")[0])
  _commands(parser.add_subparsers(dest="command", required=True))
  return parser


def _stdout_closed() -> bool:
  """Whether stdout is a pipe nobody reads any more (not a broken socket elsewhere)."""
  import select
  try:
    poll = select.poll()
    poll.register(sys.stdout.fileno(), select.POLLOUT)
    return any(events & select.POLLERR for _, events in poll.poll(0))
  except (AttributeError, OSError, ValueError):  # no poll, or stdout has no descriptor
    return True


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  try:
    try:
      rest, overrides = _split_overrides(argv)
      args = _parser().parse_args(rest)
      return args.handler(args, overrides)
    finally:
      sys.stdout.flush()  # a closed stdout shows here, not as a traceback at exit
  except BrokenPipeError:
    if not _stdout_closed():
      raise
    # Quietly, as `yes | head -1` does; what is still buffered goes nowhere.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_BROKEN_PIPE
  except ConfigError as e:
    print(f"jaxlm: error: {e}", file=sys.stderr)
    return EXIT_BAD_INPUT
  except KeyboardInterrupt:  # outside training, or a second Ctrl-C: quietly, as shells expect
    print("jaxlm: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


if __name__ == "__main__":
  sys.exit(main())
