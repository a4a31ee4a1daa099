"""The config reference (docs/config.md), generated from the schema's dataclasses and their
comments, so it can never miss a field: `python -m jaxlm.config.reference > docs/config.md`
(tests/config/test_reference.py fails when the committed copy is stale)."""

from __future__ import annotations

import dataclasses
import inspect
import re

from jaxlm.config.schema import Config

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


def _rows(obj, prefix: str = "", nested: bool = True) -> list[str]:
  rows, comments = [], _comments(type(obj))
  for field in dataclasses.fields(obj):
    value = getattr(obj, field.name)
    if dataclasses.is_dataclass(value):
      rows += _rows(value, f"{prefix}{field.name}.") if nested else []
      continue
    shown = f"`{value!r}`" if isinstance(value, str) else f"`{value}`"
    meaning = comments.get(field.name, "").replace("|", "\\|")
    rows.append(f"| `{prefix}{field.name}` | {shown} | {meaning} |")
  return rows


def markdown() -> str:
  from jaxlm.eval.compare import CompareConfig  # noqa: PLC0415
  from jaxlm.eval.recipe import FinetuneConfig  # noqa: PLC0415
  from jaxlm.model import kernels  # noqa: PLC0415
  from jaxlm.objectives import OBJECTIVES  # noqa: PLC0415

  return "\n".join([
    "# Config reference",
    "",
    "Generated from `jaxlm/config/schema.py` by `python -m jaxlm.config.reference`; do not edit.",
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
    " (`jaxlm/eval/recipe.py`; not part of the pre-training config).",
    "",
    "| key | default | meaning |",
    "|---|---|---|",
    *_rows(FinetuneConfig(), "finetune."),
    "",
    "## Comparison",
    "",
    "`jaxlm compare --config.objectives=mlm,clm,prefix_lm` (`jaxlm/eval/compare.py`); its",
    "`pretrain.*` keys are the pre-training config above, its `finetune.*` keys the recipe.",
    "",
    "| key | default | meaning |",
    "|---|---|---|",
    *_rows(CompareConfig(), nested=False),
    "",
    "## Attention kernels",
    "",
    kernels.table(),
    "",
  ])


if __name__ == "__main__":
  print(markdown(), end="")
