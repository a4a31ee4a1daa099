"""Pre-training: state (state.py), the pure step (step.py), the loop (loop.py), held-out
evaluation (evaluate.py), optimizer, checkpoints, FLOPs, the metrics logger (logger.py), and the
synthetic-data benchmark (bench.py)."""

from jaxlm.train.loop import NonFiniteLoss, Preempted, train

__all__ = ["NonFiniteLoss", "Preempted", "train"]
