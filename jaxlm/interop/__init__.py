"""Hugging Face interop: import (hf_import.py) and export (hf_export.py) of BERT (with its
next-sentence head), RoBERTa-PreLayerNorm, XLM-RoBERTa-XL and GPT-2 checkpoints, export of
RoPE models as GPT-NeoX (causal) and ESM (masked), and of fine-tuned causal classifiers as
GPT-2 / GPT-NeoX sequence classifiers (hf_classifier.py)."""
