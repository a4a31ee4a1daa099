"""Fine-tuning: a classifier on a pre-trained backbone (trainer.py), its inputs (inputs.py) and
its recipe (config.py). Kept free of imports, so the recipe loads without JAX."""
