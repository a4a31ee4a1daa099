"""jaxlm: pre-train BERT-style (MLM), GPT-style (CLM) and prefix-LM Transformers in JAX."""

__version__ = "0.1.0"
