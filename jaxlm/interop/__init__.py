"""Hugging Face interop: import (hf_import.py) and export (hf_export.py, which picks the class;
hf_writers.py, one writer per class) of BERT (with its next-sentence head),
RoBERTa-PreLayerNorm, XLM-RoBERTa-XL and GPT-2 checkpoints, export of RoPE models as GPT-NeoX
(causal) and ESM (masked), and of fine-tuned classifiers as GPT-2 / GPT-NeoX (causal) and BERT,
RoBERTa-PreLayerNorm, XLM-R XL / ESM (bidirectional) sequence classifiers (hf_classifier.py);
hf_layouts.py holds the name tables both directions read."""
