"""Test helpers: tiny configs and models (model.py), CLI runs (cli.py), fake cloud tools (launch_fakes.py), a local Cloud Storage (gcs_emulator.py)."""
