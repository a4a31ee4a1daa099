"""The one Transformer backbone and its heads (Flax NNX).

masks.py (who attends to whom, as data), kernels/ (attention kernels, a registry),
activations.py (the MLP's), attention_dropout.py, flat_dot.py (the dense layers' product),
backbone.py (embeddings, blocks, `Backbone`), lm.py (`LanguageModel`, `Classifier`). Loaded
lazily, so `jaxlm.model.masks` and `jaxlm.model.kernels` import without Flax.
"""


def __getattr__(name: str):
  if name in ("LanguageModel", "Classifier", "MLMHead"):
    from jaxlm.model import lm  # noqa: PLC0415 - Flax loads on first use
    return getattr(lm, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
