"""The `jaxlm` command: train, finetune, compare, scale, eval, lm-eval, bench, generate,
fill-mask, export and data prepare.

Each subcommand is a parser (`_commands`) and a handler (in `jaxlm.cli_handlers`); `main` splits
the `--config.a.b=value` overrides off, parses, and calls the handler, which loads and preflights
its config before it imports anything heavy, joins a multi-process job, takes its workdir and
runs. Heavy modules load inside the handlers, so `--help` and config errors stay instant.
"""

from __future__ import annotations

import argparse
import os
import sys

# The handlers, and the exit codes they share with `main`: all five (the README documents
# them) are this module's names too, for scripts and tests.
from jaxlm.cli_handlers import (
  EXIT_BAD_INPUT,
  EXIT_BROKEN_PIPE,
  EXIT_INTERRUPTED,
  _bench,
  _eval,
  _export,
  _fill_mask,
  _finetune,
  _generate,
  _lm_eval,
  _prepare,
  _study,
  _train,
)
from jaxlm.cli_handlers import EXIT_NONFINITE as EXIT_NONFINITE
from jaxlm.cli_handlers import EXIT_PREEMPTED as EXIT_PREEMPTED
from jaxlm.config import ConfigError


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
