"""Hugging Face interop: import (hf_import.py) and export (hf_export.py) of BERT (with its
next-sentence head), RoBERTa-PreLayerNorm, XLM-RoBERTa-XL and GPT-2 checkpoints, and export of
RoPE models as GPT-NeoX (causal) and ESM (masked)."""
