"""The `jaxlm` command. Subcommands: train (more arrive with later work: data, finetune, ...)."""

from __future__ import annotations

import argparse
import sys

from jaxlm.config import ConfigError, load_config

EXIT_BAD_INPUT = 2


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


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="jaxlm", description=__doc__)
  sub = parser.add_subparsers(dest="command", required=True)
  train = sub.add_parser("train", help="pre-train with the clm, mlm or prefix_lm objective",
                         epilog="Override any config field: --config.model.num_layers=2")
  train.add_argument("--config", required=True, help="a config file, e.g. configs/tiny.py")
  train.add_argument("--workdir", required=True, help="run directory (resumed if it exists)")
  train.add_argument("--quiet", action="store_true", help="no progress bar")
  return parser


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  try:
    rest, overrides = _split_overrides(argv)
    args = _parser().parse_args(rest)
    config = load_config(args.config, overrides)
    # Imported late: `jaxlm --help` and config errors stay instant, before JAX loads.
    from jaxlm.train import train
    train(config, args.workdir, quiet=args.quiet)
  except ConfigError as e:
    print(f"jaxlm: error: {e}", file=sys.stderr)
    return EXIT_BAD_INPUT
  return 0


if __name__ == "__main__":
  sys.exit(main())
