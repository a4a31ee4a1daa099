"""jaxlm: pre-train BERT-style (MLM), GPT-style (CLM) and prefix-LM Transformers in JAX."""

__version__ = "0.1.0"

# Before JAX starts its CPU client: see host_memory.py (JAXLM_MALLOC=system leaves malloc alone).
from jaxlm.host_memory import reuse_freed_memory as _reuse_freed_memory  # noqa: E402

_reuse_freed_memory()


def __getattr__(name: str):
  # Lazy (PEP 562), so `import jaxlm` stays light: JAX loads on first use of jaxlm.load.
  if name == "load":
    from jaxlm.api import load  # noqa: PLC0415 - JAX loads on first use
    return load
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
