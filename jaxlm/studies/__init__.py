"""Studies: `jaxlm compare` and `jaxlm scale`, the runs they share (runs.py), their results
(results.py), reports and plots. Kept free of imports, so a shipped study config loads only
`studies/config.py`."""
