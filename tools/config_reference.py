"""The config reference (docs/config.md), generated from the schema's dataclasses and their
comments, so it can never miss a field of any config root (the pre-training config, the
fine-tuning recipe, the two studies): `python tools/config_reference.py > docs/config.md`
(tests/config/test_reference.py fails when the committed copy is stale)."""

from __future__ import annotations

import dataclasses
import inspect
import re

from jaxlm.config.schema import Config
from jaxlm.finetune.config import FinetuneConfig
from jaxlm.model import kernels
from jaxlm.objectives import OBJECTIVES
from jaxlm.studies.config import CompareConfig, ScaleConfig, StudyConfig

_FIELD = re.compile(r"^\s+(\w+): [^=]+?(?:= (.+?))?(?:\s+#\s*(.*))?$")


def _comments(cls: type) -> dict[str, str]:
  """Each field's comment: its trailing `# ...`, after any `# ...` lines just above it."""
  found, above = {}, []
  for line in inspect.getsource(cls).splitlines():
    stripped = line.strip()
    if stripped.startswith("#"):
      above.append(stripped.lstrip("# "))
      continue
    match = _FIELD.match(line)
    if match and not stripped.startswith(("def ", "@", "return")):
      found[match.group(1)] = " ".join(above + ([match.group(3)] if match.group(3) else []))
    above = []
  return found


def _rows(obj, prefix: str = "", nested: bool = True, skip: set[str] | tuple[str, ...] = ()) -> list[str]:
  comments = {}
  for cls in reversed(type(obj).__mro__[:-1]):  # a subclass's comments win
    comments |= _comments(cls)
  rows = []
  for field in dataclasses.fields(obj):
    if field.name in skip:
      continue
    value = getattr(obj, field.name)
    if dataclasses.is_dataclass(value):
      rows += _rows(value, f"{prefix}{field.name}.") if nested else []
      continue
    if isinstance(value, tuple):  # as written on the command line
      shown = f"`{','.join(map(str, value))}`" if value else "(empty)"
    else:
      shown = f"`{value!r}`" if isinstance(value, str) else f"`{value}`"
    meaning = comments.get(field.name, "").replace("|", "\\|")
    rows.append(f"| `{prefix}{field.name}` | {shown} | {meaning} |")
  return rows


def _shared() -> set[str]:
  return {f.name for f in dataclasses.fields(StudyConfig)}


def markdown() -> str:
  return "\n".join([
    "# Config reference",
    "",
    "Generated from the config dataclasses by `python tools/config_reference.py`; do not edit.",
    "Set any field on the command line: `--config.model.num_layers=4`. Unknown keys and bad",
    "values are one-line errors before anything compiles.",
    "",
    f"`objective`: one of {', '.join(f'`{name}`' for name in OBJECTIVES)} "
    "(the registry in `jaxlm/objectives/`).",
    f"`model.attention`: `auto` or one of {', '.join(f'`{k}`' for k in kernels.KERNELS)} "
    "(the registry in `jaxlm/model/kernels/`; see docs/kernels.md).",
    "",
    "| key | default | meaning |",
    "|---|---|---|",
    *_rows(Config()),
    "",
    "## Fine-tuning recipe",
    "",
    "`jaxlm finetune ... --config.finetune.lr=5e-5` and `jaxlm compare --config.finetune.seeds=5`"
    " (`jaxlm/finetune/config.py`; not part of the pre-training config).",
    "",
    "| key | default | meaning |",
    "|---|---|---|",
    *_rows(FinetuneConfig(), "finetune."),
    "",
    "## Studies",
    "",
    "`jaxlm compare` and `jaxlm scale` (`jaxlm/studies/config.py`) share these keys; their",
    "`pretrain.*` keys are the pre-training config above, their `finetune.*` keys the recipe.",
    "Lists are comma-separated on the command line: `--config.objectives=mlm,clm,prefix_lm`.",
    "",
    "| key | default | meaning |",
    "|---|---|---|",
    *_rows(StudyConfig(), nested=False),
    "",
    "### Comparison (`jaxlm compare`)",
    "",
    "| key | default | meaning |",
    "|---|---|---|",
    *_rows(CompareConfig(), nested=False, skip=_shared()),
    "",
    "### Scaling laws (`jaxlm scale`)",
    "",
    "| key | default | meaning |",
    "|---|---|---|",
    *_rows(ScaleConfig(), nested=False, skip=_shared() - {"zero_shot_sample"}),
    "",
    "## Attention kernels",
    "",
    kernels.table(),
    "",
  ])


if __name__ == "__main__":
  print(markdown(), end="")
