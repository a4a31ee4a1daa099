"""Every check a command makes before it compiles, trains or writes anything, in one place.

`config.validate()` checks values alone (and imports nothing); here they meet the registries
(objectives, attention kernels, data sources), the filesystem and the device mesh. Each check
raises the one-line ConfigError the CLI prints with exit code 2. Defaults that follow from the
objective are filled in here too, so `--config.objective=mlm_nsp` needs nothing else.
"""

from __future__ import annotations

import jax

from jaxlm import objectives, storage
from jaxlm.config import Config, ConfigError, replace_at
from jaxlm.data import sources
from jaxlm.model import kernels


def pretrain_config(config: Config) -> Config:
  """`config` validated against the registries and the filesystem, with the objective's
  defaults filled in: token types for sentence-pair objectives when `model.type_vocab_size` is
  0 (a nonzero value is the user's, and must suffice)."""
  config.validate()
  objective = objectives.get(config.objective)
  # Registered and computing in this dtype; whether it runs on this backend is checked when the
  # model is built (reading the backend here would start JAX before a multi-process job joins).
  kernels.check(config.model.attention, config.model.dtype)
  sources.scheme(config.data.source)
  needs = objective.token_types
  if needs and config.model.type_vocab_size == 0:
    config = replace_at(config, "model.type_vocab_size", needs)
  if config.model.type_vocab_size < needs:
    raise ConfigError(f"config.model.type_vocab_size={config.model.type_vocab_size}: objective="
                      f"{config.objective} reads {needs} token types (sentence A / B); set "
                      f"--config.model.type_vocab_size={needs} (or 0 for what it needs)")
  check_paths(config)
  return config.validate()


def check_paths(config: Config) -> Config:
  """The files a config names exist (local or gs://)."""
  tok = config.data.tokenizer
  if tok not in ("bpe", "wordpiece") and not storage.path(tok).exists():
    raise ConfigError(
      f"config.data.tokenizer={tok!r}: allowed: bpe, wordpiece, or an existing tokenizer.json, "
      "vocab.txt, or directory with vocab.json + merges.txt")
  if config.init_from and not storage.path(config.init_from).is_dir():
    raise ConfigError(f"--init_from {config.init_from}: no such run directory")
  return config


def mesh_fit(config: Config, mesh: jax.sharding.Mesh) -> None:
  """Shape checks that need the mesh: each microbatch splits over the data-parallel devices."""
  shards = mesh.shape["data"] * mesh.shape["fsdp"]
  micro_batch = config.batch_size // config.grad_accum
  if micro_batch % shards:
    raise ConfigError(
      f"config.batch_size={config.batch_size}: each of the {config.grad_accum} microbatches "
      f"({micro_batch} sequences) must split evenly over data*fsdp={shards} devices")


def batch_fits(key: str, batch_size: int, mesh: jax.sharding.Mesh) -> None:
  """A batch of `batch_size` rows (config field `key`) splits over the data-parallel devices."""
  shards = mesh.shape["data"] * mesh.shape["fsdp"]
  if batch_size % shards:
    raise ConfigError(f"config.{key}={batch_size}: must split evenly over data*fsdp={shards} "
                      "devices")


def output_dir(path: str, flag: str) -> None:
  """A directory a command will write into: created now (local or gs://), so a path that
  cannot be is one line before anything loads."""
  try:
    storage.path(path).mkdir(parents=True, exist_ok=True)
  except (OSError, ValueError) as e:
    reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
    raise ConfigError(f"{flag} {path}: cannot create it ({reason})") from None
