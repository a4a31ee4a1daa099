"""Why `mlm_nsp` stays on the unigram plateau at the CPU default (docs/results/
compare_bert_variants.md): 500-step runs of compare/tiny's recipe that each change one thing.

  python benchmarks/nsp_plateau.py --arm mlm --seed 1 --types none     # packed rows, no table
  python benchmarks/nsp_plateau.py --arm mlm --seed 1 --types random   # + a BERT-initialised table
  python benchmarks/nsp_plateau.py --arm mlm --seed 1 --types zero     # + jaxlm's zero table
  python benchmarks/nsp_plateau.py --arm mlm_nsp --seed 0              # BERT's pairs + NSP
  python benchmarks/nsp_plateau.py --arm pairs_only --seed 0           # pairs, NSP term dropped

Each prints one JSON line: the arm and the run's final held-out metrics (`eval_batches` batches).
About 3 minutes per arm on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import jax

from jaxlm import objectives
from jaxlm.config import load_config, override
from jaxlm.model import backbone
from jaxlm.objectives import mlm_nsp
from jaxlm.studies.config import CompareConfig
from jaxlm.train.loop import train


def _random_type_table() -> None:
  """Token-type rows drawn as BERT draws them, N(0, 0.02), instead of jaxlm's zeros."""
  init = backbone.Backbone.__init__

  def patched(self, cfg, *, rngs):
    init(self, cfg, rngs=rngs)
    if cfg.type_vocab_size:
      table = self.type_embed.embedding
      table[...] = 0.02 * jax.random.normal(rngs.params(), table[...].shape, table[...].dtype)

  backbone.Backbone.__init__ = patched


def _drop_nsp_term() -> None:
  """mlm_nsp's rows and heads, trained on the masked-token loss alone (NSP still logged)."""
  def sums(*args, **kwargs):
    out = mlm_nsp.mlm_nsp_sums(*args, **kwargs)
    return {**out, "loss_sum": out["mlm_loss_sum"]}

  objectives.OBJECTIVES["mlm_nsp"] = dataclasses.replace(mlm_nsp.OBJECTIVE, loss_sums=sums)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--arm", choices=["mlm", "mlm_nsp", "pairs_only"], required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--types", choices=["none", "zero", "random"], default="zero")
  parser.add_argument("--steps", type=int, default=500)
  parser.add_argument("--workdir", required=True)
  args = parser.parse_args(argv)
  if args.types == "random":
    _random_type_table()
  if args.arm == "pairs_only":
    _drop_nsp_term()
  types = "0" if args.types == "none" and args.arm == "mlm" else "2"
  config = override(load_config("compare/tiny", expected=CompareConfig).pretrain, {
    "objective": "mlm" if args.arm == "mlm" else "mlm_nsp", "seed": str(args.seed),
    "steps": str(args.steps), "model.type_vocab_size": types})
  result = train(config, args.workdir, quiet=True)
  print(json.dumps({"arm": args.arm, "seed": args.seed, "types": args.types,
                    "steps": args.steps, **result["eval"]}))
  return 0


if __name__ == "__main__":
  sys.exit(main())
