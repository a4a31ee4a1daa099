"""Evaluation: held-out loss (heldout.py), downstream tasks (tasks/), fine-tuning, the comparison and its report."""
