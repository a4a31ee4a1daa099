"""`jaxlm scale` configs."""
