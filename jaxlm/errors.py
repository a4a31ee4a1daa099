"""The two errors every jaxlm command turns into one line on stderr and exit code 2.

A leaf module: it imports nothing from jaxlm, so any layer may raise these without an import
cycle.
"""


class ConfigError(ValueError):
  """A bad config value; its message is one line naming the key and what is allowed."""


class DataError(ConfigError):
  """Bad data input (missing or empty paths, unprepared datasets); one line, like ConfigError."""
