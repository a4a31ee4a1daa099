"""The fine-tuned classifier a `jaxlm finetune` run keeps: the best seed's parameters (orbax) in
WORKDIR/classifier/, beside classifier.json (what it is and how it scored) and tokenizer.json.

"Best" is the highest score on the task's first evaluation split among the seeds that did not
collapse to one class. That split is the one results.json reports, so the kept model's score
there is an optimistic pick of several seeds: the median in results.json is the figure to quote.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from flax import nnx
from tokenizers import Tokenizer

from jaxlm import storage
from jaxlm.config import Config, DataError
from jaxlm.eval.inputs import encode, padded
from jaxlm.eval.tasks.base import Examples
from jaxlm.model import Classifier
from jaxlm.train.checkpoint import portable_config

FOLDER = "classifier"


@dataclass
class SavedClassifier:
  """A fine-tuned classifier ready for inference on one device."""

  model: Classifier
  tokenizer: Tokenizer
  config: Config  # the pre-trained run's
  meta: dict  # task, labels, num_labels, attention, readout, max_seq_len, seed, scores

  def predict(self, texts: list[str] | list[tuple[str, str]]) -> np.ndarray:
    """Logits (N, num_labels) for single texts or (a, b) pairs, encoded as fine-tuning did."""
    pairs = [t if isinstance(t, tuple) else (t, None) for t in texts]
    texts_b = [b for _, b in pairs]
    examples = Examples([a for a, _ in pairs], None if all(b is None for b in texts_b) else texts_b,
                        np.zeros(len(pairs), np.int64), np.arange(len(pairs)))
    inputs = encode(self.tokenizer, examples, self.meta["max_seq_len"])
    batch = padded({k: inputs[k] for k in ("tokens", "segment_ids", "token_types")}, len(pairs))
    return np.asarray(self.model(batch["tokens"], batch["segment_ids"],
                                 token_types_BxT=batch["token_types"]))[:len(pairs)]


def save(workdir: epath.Path, params: nnx.State, config: Config, tok: Tokenizer,
         meta: dict) -> None:
  """Writes the classifier (every process takes part in the orbax save)."""
  folder = workdir / FOLDER
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(folder / "params", params, force=True)
  checkpointer.wait_until_finished()
  if jax.process_index() == 0:
    storage.write_atomic(folder / "classifier.json",
                         json.dumps({**meta, "config": config.to_dict()}, indent=1))
    storage.write_atomic(folder / "tokenizer.json", tok.to_str())


def is_saved(path: str | os.PathLike) -> bool:
  return (storage.path(path) / FOLDER / "classifier.json").is_file()


def load(path: str | os.PathLike) -> SavedClassifier:
  """The classifier a fine-tuning WORKDIR holds, on one device."""
  folder = storage.path(path) / FOLDER
  if not (folder / "classifier.json").is_file():
    raise DataError(f"{path}: holds no fine-tuned classifier ({FOLDER}/classifier.json); "
                    "fine-tune with `jaxlm finetune` first")
  meta = json.loads((folder / "classifier.json").read_text())
  config = portable_config(meta.pop("config"))
  abstract = nnx.eval_shape(lambda: build(config, meta, seed=0))
  graphdef, state = nnx.split(abstract)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), state)
  params = ocp.StandardCheckpointer().restore(folder / "params", target)
  tok = Tokenizer.from_str((folder / "tokenizer.json").read_text())
  return SavedClassifier(nnx.merge(graphdef, params), tok, config, meta)


def build(config: Config, meta: dict, seed: int) -> Classifier:
  """The classifier's module for the saved description (dropout off: inference)."""
  return Classifier(config.model, meta["attention"], meta["readout"], meta["num_labels"], 0.0,
                    rngs=nnx.Rngs(params=seed))
