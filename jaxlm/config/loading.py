"""Loading configs: named configs shipped in `configs/` (installed as `jaxlm.configs`) or files, `--config.a.b=value`
overrides, and the path checks that `validate()` leaves to the command's entry."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.resources
import importlib.util
import json
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
  if origin is tuple and typing.get_args(hint)[1:] == (Ellipsis,):
    item = typing.get_args(hint)[0]
    items = [part.strip() for part in text.split(",") if part.strip()]
    if item is int:  # counts may be written 1e6
      try:
        return tuple(int(float(part)) for part in items)
      except ValueError:
        raise ConfigError(f"config.{key}={text!r}: expected comma-separated integers") from None
    return tuple(_parse_value(key, part, item) for part in items)
  raise ConfigError(f"config.{key}: cannot be set from the command line")


def apply_override(config: Any, dotted: str, text: str, *, where: str = "") -> Any:
  """A copy of `config` (any frozen config dataclass) with `<dotted>` set from its text form,
  e.g. ('model.num_layers', '2'). `where`: the prefix `config` sits at on the command line
  (e.g. "finetune."), for the error messages."""
  try:
    return _apply_override(config, dotted, text)
  except ConfigError as e:
    if not where:
      raise
    raise ConfigError(str(e).replace("config.", f"config.{where}", 1)) from None


def _apply_override(config: Any, dotted: str, text: str) -> Any:
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


def _shipped_root() -> Path:
  _register_source_configs()
  return Path(str(importlib.resources.files("jaxlm.configs")))


def _register_source_configs() -> None:
  """`jaxlm.configs` is the repository's top-level configs/ folder, which installing jaxlm maps
  into the package. Run from a source checkout that is not installed (PYTHONPATH=checkout, as
  on a machine that receives a copy of the repository), the same folder is registered under
  that name, so shipped config names resolve the same way."""
  if importlib.util.find_spec("jaxlm.configs") is not None:
    return
  folder = Path(__file__).resolve().parents[2] / "configs"
  if not (folder / "__init__.py").is_file():
    return
  spec = importlib.util.spec_from_file_location("jaxlm.configs", folder / "__init__.py",
                                                submodule_search_locations=[str(folder)])
  module = importlib.util.module_from_spec(spec)
  sys.modules["jaxlm.configs"] = module
  spec.loader.exec_module(module)


def named_configs() -> list[str]:
  """The configs that ship with jaxlm, by name (`tiny`, `compare/tiny`, ...)."""
  root = _shipped_root()
  return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.py")
                if p.name != "__init__.py" and p.stem != "base")


def _module(name: str | Path) -> types.ModuleType:
  """A config file's module, or a shipped config's (`tiny`, `compare/tiny`, also
  `configs/tiny.py`), imported as `jaxlm.configs.<name>` so it may import its siblings
  (`from jaxlm.configs import base`) and commands work from any directory after install."""
  path = Path(name)
  stem = str(name).removeprefix("configs/").removesuffix(".py")
  if stem in named_configs():
    return importlib.import_module("jaxlm.configs." + stem.replace("/", "."))
  if path.is_file():
    spec = importlib.util.spec_from_file_location(f"jaxlm_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
  raise ConfigError(f"--config {name}: no such config file or shipped config; shipped: "
                    f"{', '.join(named_configs())}")


def load_config(path: str | Path, overrides: dict[str, str] | None = None, *,
                expected: type = None) -> Any:
  """Loads `get_config()` from a config file or a shipped config, applies overrides and
  validates. `expected` is the dataclass it must return (default: Config); it needs a
  `validate()` method."""
  expected = expected or Config
  if Path(path).suffix in DATA_SUFFIXES:
    config = _data_file_config(Path(path), expected)
  else:
    module = _module(path)
    if not isinstance(getattr(module, "get_config", None), types.FunctionType):
      raise ConfigError(f"--config {path}: the file defines no get_config() function")
    config = module.get_config()
    if not isinstance(config, expected):
      raise ConfigError(f"--config {path}: get_config() must return "
                        f"{expected.__module__}.{expected.__name__}")
  config = override(config, overrides or {})
  return config.validate()


# Config files holding data rather than code: a run directory's own config.json (so a run can be
# re-run from it), or the same fields in YAML.
DATA_SUFFIXES = (".json", ".yaml", ".yml")


def _data_file_config(path: Path, expected: type) -> Config:
  """The (not yet validated) Config a .json / .yaml file describes, e.g. RUN/config.json."""
  if expected is not Config:
    raise ConfigError(f"--config {path}: a {path.suffix} config describes one pre-training run; "
                      f"this command takes a python config file defining get_config()")
  if not path.is_file():
    raise ConfigError(f"--config {path}: no such config file")
  text = path.read_text(encoding="utf-8")
  if path.suffix == ".json":
    try:
      data = json.loads(text)
    except ValueError as e:
      raise ConfigError(f"--config {path}: not valid JSON ({e})") from None
  else:
    try:
      import yaml  # noqa: PLC0415 - only YAML configs need it (PyYAML, which flax requires)
    except ImportError:
      raise ConfigError(f"--config {path}: reading YAML needs PyYAML (pip install pyyaml); "
                        "or give the config as .json or .py") from None
    try:
      data = yaml.safe_load(text)
    except yaml.YAMLError as e:
      raise ConfigError(f"--config {path}: not valid YAML ({' '.join(str(e).split())})") from None
  if not isinstance(data, dict):
    raise ConfigError(f"--config {path}: expected a mapping of config fields (as a run's "
                      f"config.json holds), got {type(data).__name__}")
  try:
    return _build(data)
  except ConfigError as e:
    raise ConfigError(f"--config {path}: {e}") from None


# Groups that runs saved by earlier versions hold and Config no longer has: the fine-tuning
# recipe moved to jaxlm.finetune.config.
_RETIRED = ("finetune",)


def from_dict(data: dict[str, Any]) -> Config:
  """Rebuilds a Config from `to_dict()` output (e.g. a saved config.json). A run saved before
  `data.doc_start` existed opened no document with a token: it loads as `none`."""
  return _build(data).validate()


def _field_value(key: str, value: Any, hint: Any) -> Any:
  """`value` as the field declares it: JSON lists become tuples; text (as YAML may leave 1e-3)
  is parsed as on the command line."""
  if typing.get_origin(hint) is tuple and isinstance(value, (list, tuple)):
    return tuple(_field_value(key, item, typing.get_args(hint)[0]) for item in value)
  if isinstance(value, str) and hint is not str:
    return _parse_value(key, value, hint)
  if isinstance(value, (list, dict)):
    raise ConfigError(f"config.{key}={value!r}: expected {getattr(hint, '__name__', hint)}")
  return value


def _build(data: dict[str, Any]) -> Config:
  """from_dict, before validation (a config file's overrides still apply)."""
  if isinstance(data.get("data"), dict) and "doc_start" not in data["data"]:
    data = {**data, "data": {**data["data"], "doc_start": "none"}}
  types_ = typing.get_type_hints(Config)
  fields = {}
  for key, value in data.items():
    if key in _RETIRED:
      continue
    if key not in _field_names(Config):
      raise ConfigError(f"config.{key}: unknown key; allowed: {', '.join(_field_names(Config))}")
    group = types_[key]
    if dataclasses.is_dataclass(group):
      if not isinstance(value, dict):
        raise ConfigError(f"config.{key}={value!r}: is a group; expected a mapping of its fields")
      unknown = set(value) - set(_field_names(group))
      if unknown:
        raise ConfigError(f"config.{key}.{sorted(unknown)[0]}: unknown key; allowed: "
                          f"{', '.join(_field_names(group))}")
      hints = typing.get_type_hints(group)
      value = group(**{k: _field_value(f"{key}.{k}", v, hints[k]) for k, v in value.items()})
    else:
      value = _field_value(key, value, group)
    fields[key] = value
  return Config(**fields)
