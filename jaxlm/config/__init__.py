"""Run configuration: the typed schema (`schema.py`) and how configs are loaded (`loading.py`)."""

from jaxlm.config.loading import (
                                  apply_override,
                                  from_dict,
                                  load_config,
                                  named_configs,
                                  override,
                                  replace_at,
)
from jaxlm.config.schema import (
                                  Config,
                                  DataConfig,
                                  MeshConfig,
                                  MLMConfig,
                                  ModelConfig,
                                  OptimizerConfig,
                                  PrefixLMConfig,
)
from jaxlm.errors import ConfigError, DataError

__all__ = [
  "Config", "ConfigError", "DataConfig", "DataError", "MLMConfig", "MeshConfig",
  "ModelConfig", "OptimizerConfig", "PrefixLMConfig", "apply_override",
  "from_dict", "load_config", "named_configs", "override", "replace_at",
]
