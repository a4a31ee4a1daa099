"""The model an objective trains: its head and next-sentence classifier come from the Objective
record. Train, the Python API, interop and the studies build models here, so none of them needs
the training loop."""

from __future__ import annotations

import jax
from flax import nnx

from jaxlm.config import Config, ConfigError
from jaxlm.model import LanguageModel
from jaxlm.objectives import get


def build_model(config: Config, seed: int) -> LanguageModel:
  if not config.model.vocab_size:
    raise ConfigError("config.model.vocab_size=0: the embedding table is fitted to the tokenizer "
                      "when training starts; building a model outside training needs it set")
  objective = get(config.objective)
  return LanguageModel(config.model, objective.head, objective.nsp, rngs=nnx.Rngs(params=seed))


def abstract_model(config: Config) -> tuple[nnx.GraphDef, nnx.State]:
  """The model's graph and parameter shapes, traced without allocating anything."""
  return nnx.split(nnx.eval_shape(lambda: build_model(config, config.seed)))


def count_params(params: nnx.State, *, include_positions: bool = True) -> int:
  total = 0
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    if not include_positions and "pos_embed" in jax.tree_util.keystr(path):
      continue
    total += leaf.size
  return total


def non_embedding_params(config: Config) -> int:
  """Parameters outside the token, position and token-type tables (Kaplan et al.'s N); the
  model's vocabulary size must be resolved (a finished run's config)."""
  total = 0
  for path, leaf in jax.tree_util.tree_flatten_with_path(abstract_model(config)[1])[0]:
    names = {getattr(p, "key", getattr(p, "name", None)) for p in path}
    if not names & {"embed", "pos_embed", "type_embed"}:
      total += leaf.size
  return int(total)


def merge_params(fresh: nnx.State, loaded: nnx.State, *, require: str | None = None
                 ) -> nnx.State:
  """Loaded values where the paths match (the backbone), fresh ones elsewhere (a new head).

  `require`: a path prefix (e.g. "backbone") every parameter under which must be loaded; one
  left at its fresh value is a ConfigError naming it, never a silent random weight."""
  loaded_by_path = dict(jax.tree_util.tree_flatten_with_path(loaded)[0])
  paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(fresh)
  if require is not None:
    missing = [jax.tree_util.keystr(p) for p, _ in paths_leaves
               if _first_key(p) == require and p not in loaded_by_path]
    if missing:
      raise ConfigError(f"the pre-trained parameters lack {len(missing)} of the model's "
                        f"{require} parameters (first: {missing[0]}); is it a run of this shape?")
  return jax.tree_util.tree_unflatten(
    treedef, [loaded_by_path.get(path, leaf) for path, leaf in paths_leaves])


def _first_key(path) -> str | None:
  return getattr(path[0], "key", getattr(path[0], "name", None)) if path else None
