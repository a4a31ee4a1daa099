"""`jaxlm compare` configs."""
