"""The run configuration's schema: frozen typed groups, each field's meaning, each group's
`validate()`.

Everything a run does is decided here and checked by `Config.validate()` (every group's own
`validate()`, then the checks that span groups) before anything is compiled, so a typo costs a
user one line on stderr, not a compile. Configs are frozen: a changed config is a new one
(`dataclasses.replace`, or `jaxlm.config.override` for dotted keys). `validate()` is pure: it
never touches the filesystem or the network (paths are checked once, at the command's entry, by
`jaxlm.config.loading.check_paths`).

Two vocabulary sizes, two names: `data.vocab_size` is the size the tokenizer is trained to;
`model.vocab_size` is the number of rows of the embedding table, fitted at training time to the
tokenizer (its size rounded up to a multiple of 128) unless set.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any, Literal

from jaxlm.errors import ConfigError, DataError  # noqa: F401 - re-exported

frozen = dataclasses.dataclass(frozen=True)


def _positive(group: str, **values: int) -> None:
  for key, value in values.items():
    if not isinstance(value, int) or value <= 0:
      raise ConfigError(f"config.{group}{key}={value}: must be a positive integer")


def _fraction(group: str, **values: float) -> None:
  for key, value in values.items():
    if not 0.0 <= value < 1.0:
      raise ConfigError(f"config.{group}{key}={value}: must be in [0, 1)")


@frozen
class ModelConfig:
  """Shape of the shared Transformer backbone (letters as in the papers: V, T, D, H, L, F)."""

  # V, rows of the embedding table; 0: fitted to the tokenizer when training starts (its size
  # rounded up to a multiple of 128). The tokenizer's own size is data.vocab_size.
  vocab_size: int = 0
  max_seq_len: int = 128  # T_max, for learned position embeddings
  embed_dim: int = 128  # D
  num_heads: int = 4  # H
  num_layers: int = 2  # L
  mlp_dim: int = 512  # F
  position: Literal["learned", "sinusoidal", "rope", "none"] = "learned"  # position encoding
  rope_theta: float = 10000.0  # RoPE base frequency
  norm: Literal["pre", "post"] = "pre"  # pre-LN (GPT-2) or post-LN (original BERT)
  # Pre-LN only: also LayerNorm the embeddings, as RoBERTa-PreLayerNorm does (post-LN always
  # does). A pre-LN MLM run exports to RobertaPreLayerNormForMaskedLM with it, to
  # XLMRobertaXLForMaskedLM without it (docs/inference.md).
  embed_norm: bool = False
  # Token-type (segment) embeddings: 0 = none (GPT); BERT has 2 (sentence A / B), which
  # next-sentence prediction and pair fine-tuning tasks use.
  type_vocab_size: int = 0
  layer_norm_eps: float = 1e-5  # LayerNorm epsilon
  # GELU as GPT-2 computes it (tanh approximation) or as BERT does (exact, with erf).
  activation: Literal["gelu_tanh", "gelu_exact"] = "gelu_tanh"
  dropout: float = 0.0  # on embeddings and residual branches
  # On attention probabilities (BERT and GPT-2 used 0.1). Training then runs attention in its
  # explicit form (no fused kernel drops probabilities); evaluation keeps the fast kernel.
  attention_dropout: float = 0.0
  attention: str = "auto"  # auto or a kernel of jaxlm.model.kernels.KERNELS
  # activation checkpointing policy per block
  remat: Literal["none", "full", "dots", "dots_no_batch"] = "none"
  scan_layers: bool = True  # scan over stacked layers (one compiled block) or unroll
  # > 0: the loss takes this many positions at a time and remakes their logits in the backward
  # pass, so the B x T x V float32 logits (3.3 GB for GPT-2 at 16 x 1024) never exist at once.
  loss_chunk: int = 0
  dtype: Literal["float32", "bfloat16"] = "float32"  # compute dtype
  param_dtype: Literal["float32", "bfloat16"] = "float32"  # parameter dtype

  @property
  def head_dim(self) -> int:
    return self.embed_dim // self.num_heads

  def validate(self) -> ModelConfig:
    _positive("model.", max_seq_len=self.max_seq_len, embed_dim=self.embed_dim,
              num_heads=self.num_heads, num_layers=self.num_layers, mlp_dim=self.mlp_dim)
    if self.vocab_size < 0:
      raise ConfigError(f"config.model.vocab_size={self.vocab_size}: must be >= 0 "
                        "(0: fitted to the tokenizer)")
    if self.type_vocab_size < 0:
      raise ConfigError(f"config.model.type_vocab_size={self.type_vocab_size}: must be >= 0 "
                        "(0: no token types)")
    if self.loss_chunk < 0:
      raise ConfigError(f"config.model.loss_chunk={self.loss_chunk}: must be >= 0 (0: no chunks)")
    if self.embed_dim % self.num_heads:
      raise ConfigError(f"config.model.num_heads={self.num_heads}: must divide "
                        f"model.embed_dim={self.embed_dim}")
    if self.position == "rope" and self.head_dim % 2:
      raise ConfigError(f"config.model.position=rope: needs an even head dim, got {self.head_dim}")
    _fraction("model.", dropout=self.dropout, attention_dropout=self.attention_dropout)
    return self


@frozen
class MLMConfig:
  """Which tokens MLM predicts (objectives/masking.py; docs/objectives.md has the references)."""

  mask_rate: float = 0.15  # share of eligible tokens selected for prediction
  mask_token_prob: float = 0.8  # of the selected: replaced by [MASK]
  random_token_prob: float = 0.1  # replaced by a random token; the rest stay unchanged
  # token: each token on its own (BERT); whole_word: every token of a selected word (BERT's
  # whole-word masking); span: runs of whole words with geometric lengths (SpanBERT).
  masking: Literal["token", "whole_word", "span"] = "token"
  span_p: float = 0.2  # span: a new span starts at each word with this probability
  max_span: int = 10  # span: spans longer than this many words are cut

  def validate(self) -> MLMConfig:
    if not 0.0 < self.mask_rate < 1.0:
      raise ConfigError(f"config.mlm.mask_rate={self.mask_rate}: must be in (0, 1)")
    if not 0.0 < self.span_p <= 1.0:
      raise ConfigError(f"config.mlm.span_p={self.span_p}: must be in (0, 1]")
    _positive("mlm.", max_span=self.max_span)
    if self.mask_token_prob < 0 or self.random_token_prob < 0 or (
        self.mask_token_prob + self.random_token_prob > 1.0):
      raise ConfigError(
        f"config.mlm.mask_token_prob={self.mask_token_prob}, random_token_prob="
        f"{self.random_token_prob}: must be >= 0 and sum to at most 1")
    return self


@frozen
class HybridConfig:
  """GPT-BERT's causal + masked mix (objective `hybrid`, objectives/mntp.py)."""

  # Share of each batch's rows trained causally (next-token prediction at every position); the
  # rest are masked next-token rows. GPT-BERT (BabyLM 2024): 1 causal to 15 masked.
  causal_fraction: float = 0.0625
  # How the two kinds of row share the loss. "rows" (GPT-BERT's default): each kind's mean
  # token loss, weighted by its share of rows, so causal rows carry causal_fraction of it.
  # "tokens": the mean over every predicted token of both kinds (GPT-BERT's
  # --token_weighted_loss), where a causal row, predicting every token, outweighs a masked one
  # by about 1 / mask_rate.
  loss_weighting: str = "rows"

  def validate(self) -> HybridConfig:
    if not 0.0 <= self.causal_fraction <= 1.0:
      raise ConfigError(f"config.hybrid.causal_fraction={self.causal_fraction}: must be in [0, 1]")
    if self.loss_weighting not in ("rows", "tokens"):
      raise ConfigError(f"config.hybrid.loss_weighting={self.loss_weighting!r}; allowed: rows, "
                        "tokens")
    return self


@frozen
class ScheduleConfig:
  """An objective schedule's phases (objective `clm_then_mlm`, objectives/clm_then_mlm.py)."""

  first_frac: float = 0.5  # share of the steps the first phase (CLM) trains

  def validate(self) -> ScheduleConfig:
    if not 0.0 < self.first_frac < 1.0:
      raise ConfigError(f"config.schedule.first_frac={self.first_frac}: must be in (0, 1)")
    return self


@frozen
class PrefixLMConfig:
  # The prefix length is drawn per sequence, uniformly in [min_frac*T, max_frac*T].
  min_prefix_frac: float = 0.1
  max_prefix_frac: float = 0.9  # upper end of the prefix-length range

  def validate(self) -> PrefixLMConfig:
    if not 0.0 <= self.min_prefix_frac <= self.max_prefix_frac < 1.0:
      raise ConfigError(
        f"config.prefix_lm.min_prefix_frac={self.min_prefix_frac}, max_prefix_frac="
        f"{self.max_prefix_frac}: need 0 <= min <= max < 1")
    return self


@frozen
class MDLMConfig:
  # Masked diffusion: each row's masking rate t is drawn uniformly in [min_t, 1]; the loss
  # weights it by 1/t, so min_t bounds that weight.
  min_t: float = 1e-3

  def validate(self) -> MDLMConfig:
    if not 0.0 < self.min_t < 1.0:
      raise ConfigError(f"config.mdlm.min_t={self.min_t}: must be in (0, 1)")
    return self


@frozen
class OptimizerConfig:
  lr: float = 1e-3  # peak learning rate
  schedule: Literal["cosine", "linear", "wsd", "constant"] = "cosine"  # after linear warmup
  warmup_steps: int = 100  # linear warmup from 0
  decay_frac: float = 0.2  # warmup-stable-decay: the last fraction of steps decays linearly
  end_lr_frac: float = 0.1  # final lr as a fraction of the peak
  b1: float = 0.9  # AdamW
  b2: float = 0.95  # AdamW
  eps: float = 1e-8  # AdamW
  weight_decay: float = 0.1  # AdamW, never on norms, biases or embeddings
  grad_clip: float = 1.0  # global-norm clipping; 0 turns it off
  mu_dtype: Literal["float32", "bfloat16"] = "float32"  # Adam's first moment (bf16: 2 B/param less)

  def validate(self) -> OptimizerConfig:
    if not (self.lr > 0 and math.isfinite(self.lr)):
      raise ConfigError(f"config.optimizer.lr={self.lr}: must be a positive finite number")
    if self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip < 0:
      raise ConfigError("config.optimizer: warmup_steps, weight_decay and grad_clip must be >= 0")
    if not 0.0 <= self.end_lr_frac <= 1.0 or not 0.0 < self.decay_frac <= 1.0:
      raise ConfigError(
        f"config.optimizer.end_lr_frac={self.end_lr_frac}, decay_frac={self.decay_frac}: "
        "end_lr_frac must be in [0, 1] and decay_frac in (0, 1]")
    return self


@frozen
class MeshConfig:
  """Device mesh; -1 fills the devices the other axes leave."""

  data: int = -1  # data-parallel axis
  fsdp: int = 1  # parameters and optimizer state sharded over this axis
  tensor: int = 1  # heads and MLP sharded over this axis (must divide num_heads)

  def validate(self) -> MeshConfig:
    for axis in ("data", "fsdp", "tensor"):
      value = getattr(self, axis)
      if value == 0 or value < -1:
        raise ConfigError(f"config.mesh.{axis}={value}: must be a positive integer or -1 (fill)")
    if [self.data, self.fsdp, self.tensor].count(-1) > 1:
      raise ConfigError("config.mesh: at most one of data, fsdp, tensor may be -1")
    return self


@frozen
class DataConfig:
  source: str = "default"  # `default`, `text:PATH[,PATH...]` or `tfds:NAME[/CONFIG][:SPLIT]`
  tfds_data_dir: str = ""  # where TFDS datasets are prepared (local or gs://); "" = TFDS default
  tfds_text_key: str = "text"  # the feature holding the text
  # `bpe` or `wordpiece` (trained on the training split), or a file to load: tokenizer.json,
  # BERT's vocab.txt, or a directory with GPT-2's vocab.json + merges.txt.
  tokenizer: str = "bpe"
  vocab_size: int = 8192  # a trained tokenizer gets at most this many tokens
  packing: Literal["pack", "pad"] = "pack"  # concatenate documents, or one document per row
  heldout_frac: float = 0.05  # documents held out for evaluation, chosen by hash of their name
  max_chars: int = 0  # read at most this many characters per split (0: all)
  cache_dir: str = ""  # token cache (local or gs://); "" = $JAXLM_CACHE_DIR or ~/.cache/jaxlm
  # How a document opens. `cls`: with [CLS], inside the document, so later tokens attend to it,
  # its position learns to predict the first word (as GPT-2's <|endoftext|> and RoBERTa's <s>),
  # zero-shot scores condition on it and fine-tuning reads a token pre-training saw. `none`:
  # documents are only closed by [SEP] (runs made before this option load as `none`).
  doc_start: Literal["cls", "none"] = "cls"

  def validate(self) -> DataConfig:
    _positive("data.", vocab_size=self.vocab_size)
    _fraction("data.", heldout_frac=self.heldout_frac)
    if self.max_chars < 0:
      raise ConfigError(f"config.data.max_chars={self.max_chars}: must be >= 0 (0: all)")
    return self


GROUPS = ("model", "mlm", "hybrid", "schedule", "prefix_lm", "mdlm", "optimizer", "mesh", "data")


@frozen
class Config:
  # A key of jaxlm.objectives.OBJECTIVES: clm, mlm, mlm_nsp, prefix_lm, mntp, hybrid, ...
  objective: str = "clm"
  seed: int = 0  # parameters, data order, MLM masks, prefix splits and dropout all derive from it
  steps: int = 200  # optimizer steps
  batch_size: int = 32  # global, in sequences
  seq_len: int = 128  # T
  grad_accum: int = 1  # microbatches per step
  log_every: int = 10  # steps between logged training metrics
  eval_every: int = 100  # 0: only at the end
  eval_batches: int = 4  # held-out batches per periodic evaluation
  checkpoint_every: int = 0  # steps between checkpoints (0: none by steps)
  # Minutes of wall time between checkpoints (0: none by time), checked every log_every steps;
  # with checkpoint_every=0 and a short run, only the end saves.
  checkpoint_minutes: float = 15.0
  keep_checkpoints: int = 3  # the newest N ...
  keep_period: int = 0  # ... plus every checkpoint whose step is a multiple of this (0: none)
  # Token milestones (e.g. 1e6,2e6,5e6): a checkpoint is saved at the first step whose tokens seen
  # reach each and never deleted, so the learning curve by tokens seen can be measured later.
  checkpoint_tokens: tuple[int, ...] = ()
  max_nonfinite_steps: int = 5  # stop after this many consecutive NaN/Inf steps
  init_from: str = ""  # a run directory whose parameters start this run (--init_from)
  allow_objective_change: bool = False  # let --init_from take a run of another objective
  # Let a resumed run change what plans its learning rate (steps, optimizer.lr, schedule, ...):
  # extending a finished run re-plans the schedule from the checkpoint's step on.
  allow_schedule_change: bool = False
  peak_tflops: float = 0.0  # per device, for MFU; 0 looks the device up
  # Where metrics go besides metrics.jsonl (always written): tensorboard, wandb (an extra;
  # WANDB_MODE=offline works without a network). Empty: metrics.jsonl only.
  trackers: tuple[str, ...] = ("tensorboard",)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  mlm: MLMConfig = dataclasses.field(default_factory=MLMConfig)
  hybrid: HybridConfig = dataclasses.field(default_factory=HybridConfig)
  schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
  prefix_lm: PrefixLMConfig = dataclasses.field(default_factory=PrefixLMConfig)
  mdlm: MDLMConfig = dataclasses.field(default_factory=MDLMConfig)
  optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
  mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
  data: DataConfig = dataclasses.field(default_factory=DataConfig)

  def validate(self) -> Config:
    """Raises ConfigError (one line) on the first bad value; returns self."""
    _check_literals(self, "")
    _positive("", steps=self.steps, batch_size=self.batch_size, seq_len=self.seq_len,
              grad_accum=self.grad_accum, log_every=self.log_every,
              eval_batches=self.eval_batches, keep_checkpoints=self.keep_checkpoints,
              max_nonfinite_steps=self.max_nonfinite_steps)
    if any(t <= 0 for t in self.checkpoint_tokens) or len(set(self.checkpoint_tokens)) != len(
        self.checkpoint_tokens):
      raise ConfigError(f"config.checkpoint_tokens={','.join(map(str, self.checkpoint_tokens))!r}"
                        ": distinct positive token counts")
    for key in ("eval_every", "checkpoint_every", "keep_period"):
      if getattr(self, key) < 0:
        raise ConfigError(f"config.{key}={getattr(self, key)}: must be >= 0")
    if self.checkpoint_minutes < 0:
      raise ConfigError(f"config.checkpoint_minutes={self.checkpoint_minutes}: must be >= 0")
    if self.peak_tflops < 0:
      raise ConfigError(f"config.peak_tflops={self.peak_tflops}: must be >= 0")
    for group in GROUPS:
      getattr(self, group).validate()
    m = self.model
    if m.position == "learned" and self.seq_len > m.max_seq_len:
      raise ConfigError(
        f"config.seq_len={self.seq_len}: exceeds model.max_seq_len={m.max_seq_len} "
        "of the learned position table")
    if self.seq_len < 4:
      raise ConfigError(f"config.seq_len={self.seq_len}: must be at least 4")
    if self.batch_size % self.grad_accum:
      raise ConfigError(
        f"config.grad_accum={self.grad_accum}: must divide batch_size={self.batch_size}")
    if self.mesh.tensor > 1 and m.num_heads % self.mesh.tensor:
      raise ConfigError(
        f"config.mesh.tensor={self.mesh.tensor}: must divide model.num_heads={m.num_heads}")
    return self

  def milestone_steps(self) -> list[int]:
    """The steps that reach each of `checkpoint_tokens` (within the run), ascending."""
    per_step = self.batch_size * self.seq_len
    steps = {-(-t // per_step) for t in self.checkpoint_tokens}
    return sorted(s for s in steps if s <= self.steps)

  def embedding_rows(self, tokenizer_size: int) -> int:
    """model.vocab_size for a tokenizer of `tokenizer_size` tokens: the set value (which must
    hold every token), else the size rounded up to a multiple of 128 for the matmul units."""
    rows = self.model.vocab_size
    if rows and rows < tokenizer_size:
      raise ConfigError(f"config.model.vocab_size={rows}: smaller than the tokenizer's "
                        f"{tokenizer_size} tokens (0 fits the table to the tokenizer)")
    return rows or -(-tokenizer_size // 128) * 128

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _check_literals(obj: Any, prefix: str) -> None:
  hints = typing.get_type_hints(type(obj))
  for field in dataclasses.fields(obj):
    value = getattr(obj, field.name)
    hint = hints[field.name]
    if dataclasses.is_dataclass(value):
      _check_literals(value, f"{prefix}{field.name}.")
    elif typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
      allowed = ", ".join(map(str, typing.get_args(hint)))
      raise ConfigError(f"config.{prefix}{field.name}={value!r}: allowed values are {allowed}")


