"""What sits on the backbone: the language-model heads (`LanguageModel`) and the fine-tuning
classifier (`Classifier`). Which head and which read-out an objective uses is its record's
business (`jaxlm.objectives`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlm.config import ModelConfig
from jaxlm.model.activations import ACTIVATIONS
from jaxlm.model.backbone import Backbone, layer_norm, normal_init, zeros_init
from jaxlm.model.flat_dot import flat_dot_general
from jaxlm.model.masks import MaskSpec


class MLMHead(nnx.Module):
  """BERT's head: dense, GELU, LayerNorm, then the tied decoder with its own bias."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    self.transform = nnx.Linear(cfg.embed_dim, cfg.embed_dim, kernel_init=normal_init(("embed", None)),
                                bias_init=zeros_init(("norm",)), dtype=cfg.dtype,
                                param_dtype=cfg.param_dtype, dot_general=flat_dot_general,
                                rngs=rngs)
    self.norm = layer_norm(cfg, rngs)
    self.activation = ACTIVATIONS[cfg.activation]
    self.bias = nnx.Param(jnp.zeros((cfg.vocab_size,), cfg.param_dtype), out_sharding=("vocab",))

  def __call__(self, h_BxMxD: jax.Array, embed: nnx.Embed) -> jax.Array:
    h_BxMxD = self.norm(self.activation(self.transform(h_BxMxD)))
    return embed.attend(h_BxMxD) + self.bias[...].astype(h_BxMxD.dtype)


class NSPHead(nnx.Module):
  """BERT's next-sentence head: the pooler (dense + tanh on [CLS]), then a 2-way classifier
  (label 0: B follows A; 1: B is a random segment), as transformers' BertForPreTraining."""

  def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
    dtypes = dict(dtype=cfg.dtype, param_dtype=cfg.param_dtype, rngs=rngs)
    self.pooler = nnx.Linear(cfg.embed_dim, cfg.embed_dim, kernel_init=normal_init(("embed", None)),
                             bias_init=zeros_init(("norm",)), **dtypes)
    self.classifier = nnx.Linear(cfg.embed_dim, 2, kernel_init=normal_init(("embed", None)),
                                 bias_init=zeros_init((None,)), **dtypes)

  def __call__(self, h_BxTxD: jax.Array) -> jax.Array:
    return self.classifier(jnp.tanh(self.pooler(h_BxTxD[:, 0]))).astype(jnp.float32)


class LanguageModel(nnx.Module):
  """The backbone plus the heads its objective needs; the CLM head is the tied embedding."""

  def __init__(self, cfg: ModelConfig, head: str = "tied", nsp: bool = False, *,
               rngs: nnx.Rngs):
    """head: "tied" (the tied embedding only) or "mlm_transform" (adds BERT's MLM head); nsp:
    adds the next-sentence head; both as the objective's record says."""
    self.backbone = Backbone(cfg, rngs=rngs)
    self.mlm_head = MLMHead(cfg, rngs=rngs) if head == "mlm_transform" else None
    self.nsp_head = NSPHead(cfg, rngs=rngs) if nsp else None

  def hidden(self, tokens_BxT, spec, positions_BxT=None, dropout_key=None,
             token_types_BxT=None, queries_BxQ=None) -> jax.Array:
    """h_BxTxD, or h_BxQxD at `queries_BxQ` only (`Backbone`)."""
    return self.backbone(tokens_BxT, spec, positions_BxT, dropout_key,
                         token_types_BxT=token_types_BxT, queries_BxQ=queries_BxQ)

  def nsp_logits(self, h_BxTxD: jax.Array) -> jax.Array:
    """Next-sentence logits [B, 2] from the first ([CLS]) position."""
    return self.nsp_head(h_BxTxD)

  def lm_logits(self, h_BxTxD: jax.Array) -> jax.Array:
    """Next-token logits (CLM, prefix-LM): the tied vocabulary projection."""
    return self.backbone.embed.attend(h_BxTxD)

  def mlm_logits(self, h_BxMxD: jax.Array) -> jax.Array:
    """Masked-token logits at the M gathered positions only."""
    return self.mlm_head(h_BxMxD, self.backbone.embed)


def read_out(backbone: Backbone, tokens_BxT: jax.Array, spec: MaskSpec, readout: str,
             dropout_key: jax.Array | None = None,
             token_types_BxT: jax.Array | None = None) -> jax.Array:
  """A classifier's pooled state [B, D]: the first position ("first"), the last real token
  ("last"), the last layer run at that position alone; or the mean of the real tokens' final
  states ("mean"); real tokens have segment id > 0 in `spec`."""
  seg_BxT = spec.segment_ids_BxT
  if readout == "mean":
    h_BxTxD = backbone(tokens_BxT, spec, dropout_key=dropout_key, token_types_BxT=token_types_BxT)
    real_BxT = (seg_BxT > 0).astype(h_BxTxD.dtype)
    return (jnp.einsum("btd,bt->bd", h_BxTxD, real_BxT)
            / jnp.maximum(real_BxT.sum(1, keepdims=True), 1.0))
  if readout == "last":
    index_Bx1 = jnp.maximum(jnp.sum(seg_BxT > 0, axis=1) - 1, 0)[:, None]
  else:
    index_Bx1 = jnp.zeros((tokens_BxT.shape[0], 1), jnp.int32)
  return backbone(tokens_BxT, spec, dropout_key=dropout_key, token_types_BxT=token_types_BxT,
                  queries_BxQ=index_Bx1)[:, 0]


class Classifier(nnx.Module):
  """The backbone with a classification (or regression) head, for GLUE fine-tuning.

  `attention` and `readout` come from the objective's record: BERT reads the first ([CLS])
  position with bidirectional attention; GPT-1 keeps causal attention and reads the last real
  token, the only one that has seen the whole input; `mean` (a recipe choice, the same for every
  variant) averages the real tokens' final states instead. The backbone's parameter paths match
  LanguageModel's, so pre-trained weights load by path.
  """

  def __init__(self, cfg: ModelConfig, attention: str, readout: str, num_labels: int,
               dropout: float, *, rngs: nnx.Rngs):
    self.backbone = Backbone(cfg, rngs=rngs)
    if readout not in ("first", "last", "mean"):
      raise ValueError(f"readout={readout!r}: allowed: first, last, mean")
    self.attention, self.readout = attention, readout
    self.dropout = nnx.Dropout(dropout)
    self.head = nnx.Linear(cfg.embed_dim, num_labels, kernel_init=normal_init(("embed", None)),
                           bias_init=zeros_init((None,)), dtype=cfg.dtype,
                           param_dtype=cfg.param_dtype, rngs=rngs)

  def __call__(self, tokens_BxT: jax.Array, segment_ids_BxT: jax.Array,
               dropout_key: jax.Array | None = None,
               token_types_BxT: jax.Array | None = None) -> jax.Array:
    """token_types_BxT: 0 for [CLS] a [SEP], 1 for b [SEP]; read only by a backbone with type
    embeddings."""
    spec = MaskSpec(self.attention, segment_ids_BxT)
    k_backbone, k_head = (jax.random.split(dropout_key) if dropout_key is not None
                          else (None, None))
    pooled_BxD = read_out(self.backbone, tokens_BxT, spec, self.readout, k_backbone,
                          token_types_BxT)
    pooled_BxD = self.dropout(pooled_BxD, deterministic=k_head is None, rngs=k_head)
    return self.head(pooled_BxD).astype(jnp.float32)

