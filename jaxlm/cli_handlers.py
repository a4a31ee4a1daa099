"""The `jaxlm` subcommands' handlers, one per subcommand, and the command's exit codes (which
the handlers and `main` return); the parser that routes to them and `main` are `jaxlm.cli`'s.

A handler takes the parsed arguments and the `--config.a.b=value` overrides, loads and preflights
its config before it imports anything heavy, joins a multi-process job, takes its workdir and
runs. Heavy modules load inside the handlers, so `--help` and config errors stay instant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import sys

from jaxlm.config import ConfigError, load_config

# Exit codes (documented in the README): scripts and schedulers act on them.
EXIT_BAD_INPUT = 2  # a bad config, data path, restore or busy workdir: fix the command
EXIT_NONFINITE = 3  # too many consecutive NaN/Inf steps: the run stopped, checkpoints are clean
EXIT_PREEMPTED = 75  # SIGTERM: a checkpoint was committed; rerun the same command to resume
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT): in training a checkpoint was committed first
EXIT_BROKEN_PIPE = 141  # stdout closed early (128 + SIGPIPE), e.g. `jaxlm eval ... | head -1`


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
