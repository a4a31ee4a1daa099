"""The configs that ship with jaxlm, by name: `--config tiny`, `--config compare/tiny`. Each
module defines `get_config()`; this folder sits at the repository's top level and installs as
`jaxlm.configs`, so the names resolve from any directory. `base.py` holds the model families the
others start from."""
