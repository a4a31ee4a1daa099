"""The one Transformer backbone and its heads (Flax NNX).

masks.py (who attends to whom, as data), kernels/ (attention kernels, a registry),
attention_dropout.py, backbone.py (embeddings, blocks, `Backbone`), heads.py (`LanguageModel`,
`Classifier`). Loaded lazily, so `jaxlm.model.masks` and `jaxlm.model.kernels` import without
Flax.
"""


def __getattr__(name: str):
  if name in ("LanguageModel", "Classifier", "MLMHead"):
    from jaxlm.model import heads  # noqa: PLC0415
    return getattr(heads, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
