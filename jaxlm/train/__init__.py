"""Pre-training: state (state.py), the pure step (step.py), the loop (loop.py), optimizer,
checkpoints, FLOPs, metrics log, and the synthetic-data benchmark (bench.py)."""

from jaxlm.train.loop import NonFiniteLoss, Preempted, train

__all__ = ["NonFiniteLoss", "Preempted", "train"]
