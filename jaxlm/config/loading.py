"""Loading configs: named configs shipped in `jaxlm/configs/` or files, `--config.a.b=value`
overrides, and the path checks that `validate()` leaves to the command's entry."""

from __future__ import annotations

import dataclasses
import importlib.resources
import importlib.util
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from jaxlm.config.schema import Config
from jaxlm.errors import ConfigError


def _parse_value(key: str, text: str, hint: Any) -> Any:
  """Parses `text` as the type the field declares."""
  origin = typing.get_origin(hint)
  if origin is Literal:
    allowed = typing.get_args(hint)
    if text not in allowed:
      raise ConfigError(f"config.{key}={text!r}: allowed values are {', '.join(allowed)}")
    return text
  if hint is bool:
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise ConfigError(f"config.{key}={text!r}: expected true or false")
  if hint in (int, float, str):
    try:
      return hint(text)
    except ValueError:
      raise ConfigError(f"config.{key}={text!r}: expected {hint.__name__}") from None
  raise ConfigError(f"config.{key}: cannot be set from the command line")


def apply_override(config: Any, dotted: str, text: str) -> Any:
  """A copy of `config` (any frozen config dataclass) with `<dotted>` set from its text form,
  e.g. ('model.num_layers', '2')."""
  *parents, name = dotted.split(".")
  node: Any = config
  for i, part in enumerate(parents):
    child = getattr(node, part, None) if part in _field_names(node) else None
    if not dataclasses.is_dataclass(child):
      raise ConfigError(f"config.{'.'.join(parents[:i + 1])}: unknown key; allowed: "
                        f"{', '.join(_field_names(node))}")
    node = child
  if name not in _field_names(node):
    where = ".".join(parents)
    raise ConfigError(f"config.{dotted}: unknown key; allowed{' in config.' + where if where else ''}"
                      f": {', '.join(_field_names(node))}")
  if dataclasses.is_dataclass(getattr(node, name)):
    raise ConfigError(f"config.{dotted}: is a group; set one of its fields, "
                      f"e.g. config.{dotted}.{_field_names(getattr(node, name))[0]}=...")
  hint = typing.get_type_hints(type(node))[name]
  return replace_at(config, dotted, _parse_value(dotted, text, hint))


def replace_at(config: Any, dotted: str, value: Any) -> Any:
  """A copy of `config` with the field at `dotted` (e.g. 'model.dtype') set to `value`."""
  head, _, rest = dotted.partition(".")
  if not rest:
    return dataclasses.replace(config, **{head: value})
  return dataclasses.replace(config, **{head: replace_at(getattr(config, head), rest, value)})


def override(config: Any, overrides: dict[str, str]) -> Any:
  """`config` with every `--config.KEY=VALUE` override of `overrides` applied, in order."""
  for key, text in overrides.items():
    config = apply_override(config, key, text)
  return config


def _field_names(node: Any) -> list[str]:
  return [f.name for f in dataclasses.fields(node)]


def named_configs() -> list[str]:
  """The configs that ship with jaxlm, by name (`tiny`, `compare/tiny`, ...)."""
  root = Path(str(importlib.resources.files("jaxlm") / "configs"))
  return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.py")
                if p.name != "__init__.py" and p.stem != "base")


def resolve_config_path(name: str | Path) -> Path:
  """A config file, or the name of a shipped config (`tiny`, `compare/tiny`, also
  `configs/tiny.py`), so commands work from any directory after `pip install`."""
  path = Path(name)
  if path.is_file():
    return path
  root = Path(str(importlib.resources.files("jaxlm") / "configs"))
  stem = str(name).removeprefix("configs/").removesuffix(".py")
  shipped = root / f"{stem}.py"
  if shipped.is_file():
    return shipped
  raise ConfigError(f"--config {name}: no such config file or shipped config; shipped: "
                    f"{', '.join(named_configs())}")


def load_config(path: str | Path, overrides: dict[str, str] | None = None, *,
                expected: type = None) -> Any:
  """Loads `get_config()` from a config file, applies overrides and validates. `expected` is
  the dataclass it must return (default: Config); it needs a `validate()` method."""
  expected = expected or Config
  path = resolve_config_path(path)
  spec = importlib.util.spec_from_file_location(f"jaxlm_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  # Config files may import their siblings (`import base`), so their folder is importable
  # while they load, and no sibling module outlives the load.
  sys.path.insert(0, str(path.parent.absolute()))
  before = set(sys.modules)
  try:
    spec.loader.exec_module(module)
  finally:
    sys.path.remove(str(path.parent.absolute()))
    for name in set(sys.modules) - before:
      if getattr(sys.modules[name], "__file__", "") and Path(
          sys.modules[name].__file__).parent == path.parent.absolute():
        del sys.modules[name]
  if not isinstance(getattr(module, "get_config", None), types.FunctionType):
    raise ConfigError(f"--config {path}: the file defines no get_config() function")
  config = module.get_config()
  if not isinstance(config, expected):
    raise ConfigError(f"--config {path}: get_config() must return "
                      f"{expected.__module__}.{expected.__name__}")
  config = override(config, overrides or {})
  config.validate()
  check_paths(getattr(config, "pretrain", config))
  return config


# Groups that runs saved by earlier versions hold and Config no longer has: the fine-tuning
# recipe moved to jaxlm.eval.recipe.
_RETIRED = ("finetune",)


def from_dict(data: dict[str, Any]) -> Config:
  """Rebuilds a Config from `to_dict()` output (e.g. a saved config.json)."""
  types_ = typing.get_type_hints(Config)
  fields = {}
  for key, value in data.items():
    if key in _RETIRED:
      continue
    if key not in _field_names(Config):
      raise ConfigError(f"config.{key}: unknown key; allowed: {', '.join(_field_names(Config))}")
    if isinstance(value, dict):
      group = types_[key]
      unknown = set(value) - set(_field_names(group))
      if unknown:
        raise ConfigError(f"config.{key}.{sorted(unknown)[0]}: unknown key; allowed: "
                          f"{', '.join(_field_names(group))}")
      value = group(**value)
    fields[key] = value
  return Config(**fields).validate()


def check_paths(config: Config) -> Config:
  """The filesystem (or gs://) checks a config needs, done once at a command's entry."""
  from jaxlm import storage  # noqa: PLC0415 - gs:// support loads only when a path is checked

  tok = config.data.tokenizer
  if tok not in ("bpe", "wordpiece") and not storage.path(tok).exists():
    raise ConfigError(
      f"config.data.tokenizer={tok!r}: allowed: bpe, wordpiece, or an existing tokenizer.json, "
      "vocab.txt, or directory with vocab.json + merges.txt")
  if config.init_from and not storage.path(config.init_from).is_dir():
    raise ConfigError(f"--init_from {config.init_from}: no such run directory")
  return config
