"""The task registry: every entry honours its protocol; the shipped task reads as documented."""

from __future__ import annotations

import numpy as np
import pytest

from jaxlm.errors import ConfigError
from jaxlm.eval import tasks
from jaxlm.eval.tasks import goemotions


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_every_task_honours_its_protocol(name):
  task = tasks.get(name)
  assert task.name == name and task.kind in ("finetune", "zero_shot")
  if task.kind == "zero_shot":  # jaxlm.eval.tasks.base.ZeroShotTask
    assert all(callable(getattr(task, m)) for m in ("check", "evaluate", "render"))
    task.check(0)
    with pytest.raises(ConfigError) as e:
      task.check(0, ("no_such_group",))
    assert "\n" not in str(e.value)
    return
  assert task.num_labels == (1 if task.is_regression else len(task.label_names))
  assert task.metrics and task.eval_splits and "train" not in task.eval_splits
  if task.needs_data_dir:  # user data: asking without it is one clear line
    with pytest.raises(ConfigError, match=r"glue_dir or \$GLUE_DIR") as e:
      task.read("train", None)
    assert "\n" not in str(e.value)
    return
  for split in ("train", *task.eval_splits):
    examples = task.read(split, None, max_examples=5)
    assert len(examples) == 5 and examples.labels.dtype == np.int64
    assert set(examples.labels) <= set(range(task.num_labels))


def test_lookup_by_kind_and_alias():
  assert tasks.get("SST-2") is tasks.get("sst2")
  assert tasks.get("blimp", "zero_shot").kind == "zero_shot"
  with pytest.raises(ConfigError, match="unknown finetune task 'blimp'; allowed: cola, "):
    tasks.get("blimp", "finetune")
  with pytest.raises(ConfigError, match="unknown task 'nope'; allowed: .*goemotions_sentiment"):
    tasks.get("nope")


def test_shipped_sentiment_task_has_its_documented_splits():
  sizes = {split: len(goemotions.TASK.read(split)) for split in ("train", "validation", "test")}
  assert sizes == {"train": 16_000, "validation": 2_955, "test": 2_933}
  train = goemotions.TASK.read("train")
  test = goemotions.TASK.read("test")
  assert not set(train.texts_a) & set(test.texts_a)  # no test sentence is trained on
  # Both classes present, neither trivial: the majority class is about two thirds of test.
  assert 0.55 < np.mean(test.labels == np.bincount(test.labels).argmax()) < 0.75
  with pytest.raises(ConfigError, match="unknown split 'dev'; allowed: train, validation, test"):
    goemotions.TASK.read("dev")
