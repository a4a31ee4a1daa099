"""The evaluation-task registry: name -> task record (jaxlm.eval.tasks.base).

Fine-tuning tasks (`kind == "finetune"`): the nine GLUE tasks (data from the user) and
`goemotions_sentiment` (shipped). Zero-shot tasks (`kind == "zero_shot"`): `blimp`, `zorro`. A
new task is one module defining its record plus one line here; tests/eval/test_tasks.py checks
every entry.
"""

from __future__ import annotations

from jaxlm.errors import ConfigError
from jaxlm.eval.tasks import blimp, glue, goemotions, zorro

TASKS: dict = {
  **glue.TASKS,
  goemotions.TASK.name: goemotions.TASK,
  blimp.TASK.name: blimp.TASK,
  zorro.TASK.name: zorro.TASK,
}


def get(name, kind: str | None = None):
  """The task called `name` (a GLUE task also by its directory name, e.g. SST-2); `kind`
  restricts it to fine-tuning or zero-shot tasks."""
  if not isinstance(name, str):
    return name
  allowed = [n for n, t in TASKS.items() if kind is None or t.kind == kind]
  task = TASKS.get(name.lower())
  if task is None:
    try:
      task = glue.get_task(name)
    except ConfigError:
      task = None
  if task is None or (kind is not None and task.kind != kind):
    what = f"{kind} task" if kind else "task"
    raise ConfigError(f"unknown {what} {name!r}; allowed: {', '.join(allowed)}")
  return task
