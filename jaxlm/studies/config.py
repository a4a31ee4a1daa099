"""The studies' configs: what `jaxlm compare` and `jaxlm scale` take. Light on purpose (no JAX):
a shipped study config loads, and a bad value is reported, before anything heavy is imported.
`validate()` checks values; the registry lookups (variants, tasks) and task data are checked
by `studies.runs.preflight` before anything trains.
"""

from __future__ import annotations

import dataclasses

from jaxlm.config import Config, ConfigError
from jaxlm.finetune.config import FinetuneConfig


def _distinct(key: str, values: tuple, what: str, *, empty_ok: bool = False) -> None:
  if (not values and not empty_ok) or len(set(values)) != len(values):
    raise ConfigError(f"config.{key}={','.join(map(str, values))!r}: a comma-separated list of "
                      f"distinct {what}")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
  """What every study shares: one pre-training config its variants differ from, the zero-shot
  and fine-tuning tasks, and the fine-tuning recipe."""

  pretrain: Config = dataclasses.field(default_factory=Config)
  # Variants (jaxlm.studies.variants): an objective (clm, mlm, mlm_nsp, prefix_lm) or a named
  # variant of one (mlm_wwm, mlm_span, mlm_nsp_wwm).
  objectives: tuple[str, ...] = ("mlm", "clm")
  # Fine-tuning tasks of jaxlm.eval.tasks: goemotions_sentiment ships; GLUE tasks (sst2, rte,
  # ...) read config.glue_dir or $GLUE_DIR. Empty: none.
  tasks: tuple[str, ...] = ("goemotions_sentiment",)
  zero_shot: tuple[str, ...] = ("blimp",)  # zero-shot tasks of jaxlm.eval.tasks; empty: none
  zero_shot_sample: int = 100  # items per group of a zero-shot task (BLiMP: per paradigm); 0: all
  # The learning curve: at each token milestone a run kept (pretrain.checkpoint_tokens) and at
  # its end, held-out quality and each zero-shot task on this many items per group; 0: no curve.
  curve_sample: int = 10
  finetune: FinetuneConfig = dataclasses.field(default_factory=FinetuneConfig)
  glue_dir: str = ""  # GLUE TSVs or tfds:DATA_DIR; "" = $GLUE_DIR
  # Pre-training seeds per variant (data order, initialisation, masks): seed k > 0 runs beside
  # seed 0 (compare: VARIANT-seedK; scale: POINT-seedK), and every difference between variants
  # gets an interval over them too.
  pretrain_seeds: int = 1

  def validate(self) -> StudyConfig:
    self.pretrain.validate()
    self.finetune.validate()
    _distinct("objectives", self.objectives, "variants")
    _distinct("tasks", self.tasks, "tasks", empty_ok=True)
    _distinct("zero_shot", self.zero_shot, "tasks", empty_ok=True)
    for key in ("zero_shot_sample", "curve_sample"):
      if getattr(self, key) < 0:
        raise ConfigError(f"config.{key}={getattr(self, key)}: must be >= 0")
    if self.pretrain_seeds < 1:
      raise ConfigError(f"config.pretrain_seeds={self.pretrain_seeds}: must be a positive integer")
    return self


@dataclasses.dataclass(frozen=True)
class CompareConfig(StudyConfig):
  baseline: bool = True  # also fine-tune randomly initialised backbones (`none`)
  # The in-domain control (self-pre-training, Krishna et al. 2022): a fine-tuning task's name
  # to pre-train every variant on that task's own training texts instead of pretrain.data, the
  # same objectives and budget; "" (default): pre-train on pretrain.data.
  in_domain: str = ""

@dataclasses.dataclass(frozen=True)
class ScaleConfig(StudyConfig):
  """The grid: L layers per point, width D = width_per_layer · L, heads of head_dim, MLP
  mlp_ratio · D; each size trains at each token budget."""

  zero_shot_sample: int = 20  # items per group (BLiMP: per paradigm) at each grid point; 0: all
  depths: tuple[int, ...] = (1, 2, 3, 4)  # layer counts, one grid size each
  width_per_layer: int = 64  # D = width_per_layer * L
  head_dim: int = 32  # heads = D / head_dim
  mlp_ratio: int = 4  # MLP width = mlp_ratio * D
  tokens: tuple[int, ...] = (500_000,)  # pre-training token budgets (1e6 is accepted)
  curve_points: int = 8  # held-out evaluations along each run (the learning curve)
  warmup_frac: float = 0.1  # warmup steps as a share of each run's steps

  def grid(self) -> list[tuple[int, int, int]]:
    """(layers, width, tokens) of every grid point, smallest first."""
    return [(L, self.width_per_layer * L, n) for n in self.tokens for L in self.depths]

  def validate(self) -> ScaleConfig:
    super().validate()
    for key in ("depths", "tokens"):
      values = getattr(self, key)
      if not values or min(values) <= 0 or len(set(values)) != len(values):
        raise ConfigError(f"config.{key}={','.join(map(str, values))!r}: a comma-separated "
                          "list of distinct positive numbers")
    for key in ("width_per_layer", "head_dim", "mlp_ratio", "curve_points"):
      if getattr(self, key) <= 0:
        raise ConfigError(f"config.{key}={getattr(self, key)}: must be a positive integer")
    if self.width_per_layer % self.head_dim:
      raise ConfigError(f"config.head_dim={self.head_dim}: must divide "
                        f"config.width_per_layer={self.width_per_layer}")
    if not 0.0 <= self.warmup_frac < 1.0:
      raise ConfigError(f"config.warmup_frac={self.warmup_frac}: must be in [0, 1)")
    tokens_per_step = self.pretrain.batch_size * self.pretrain.seq_len
    for n in self.tokens:
      if n < tokens_per_step * self.curve_points:
        raise ConfigError(f"config.tokens: {n} tokens make fewer than config.curve_points="
                          f"{self.curve_points} steps of {tokens_per_step} tokens")
    return self
