"""Hugging Face interop: import (hf_import.py) and export (hf_export.py) of BERT and GPT-2 checkpoints."""
