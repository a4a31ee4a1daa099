"""Where each transformers family keeps jaxlm's parameters: the name tables `hf_import` reads
and `hf_export` writes, so the two directions cannot drift. A leaf of the interop package.

Mapping (names without the base-model prefix `bert.`, `roberta_prelayernorm.` or `roberta.`;
HF Linear weights are (out, in), GPT-2's Conv1D ones (in, out)). The three encoders share
  embeddings.word_embeddings             backbone.embed.embedding
  embeddings.position_embeddings         backbone.pos_embed.embedding (RoBERTa: from row
                                         pad_token_id + 1 on)
  embeddings.token_type_embeddings       backbone.type_embed.embedding
  layer.i.attention.self.{q,k,v}         backbone.blocks.attn.{query,key,value} [i]
  layer.i.attention.output.dense         backbone.blocks.attn.out [i]
  layer.i.{intermediate,output}.dense    backbone.blocks.mlp.{fc_in,fc_out} [i]
and differ in where their LayerNorms sit (`EncoderLayout`) and in the MLM head's names:
  BERT            embeddings.LayerNorm -> backbone.norm; per layer attention.output.LayerNorm ->
                  attn_norm, output.LayerNorm -> mlp_norm; cls.predictions.transform.{dense,
                  LayerNorm}, cls.predictions.bias -> mlm_head.{transform,norm,bias}; pooler.dense,
                  cls.seq_relationship -> nsp_head.{pooler,classifier} (BertForPreTraining)
  RoBERTa-PreLN   embeddings.LayerNorm -> backbone.embed_norm, LayerNorm (final) -> backbone.norm;
                  attention.LayerNorm -> attn_norm, intermediate.LayerNorm -> mlp_norm;
                  lm_head.{dense,layer_norm}, lm_head.bias -> mlm_head.{transform,norm,bias}
  XLM-R XL        encoder.LayerNorm (final) -> backbone.norm; attention.self_attn_layer_norm ->
                  attn_norm, LayerNorm -> mlp_norm; lm_head.* as RoBERTa-PreLN
  GPT-2           wte, wpe, h.i.{ln_1, attn.c_attn (q|k|v), attn.c_proj, ln_2, mlp.c_fc,
                  mlp.c_proj}, ln_f -> the same slots, ln_f being backbone.norm
  GPT-NeoX        (export only; RoPE, sequential residual) embed_in, layers.i.{input_layernorm,
                  attention.query_key_value (per head q|k|v), attention.dense,
                  post_attention_layernorm, mlp.dense_h_to_4h, mlp.dense_4h_to_h},
                  final_layer_norm -> the same slots
  ESM             (export only; RoPE masked LM) embeddings.layer_norm -> backbone.embed_norm,
                  encoder.emb_layer_norm_after -> backbone.norm; attention.LayerNorm ->
                  attn_norm, LayerNorm -> mlp_norm; no position or token-type tables;
                  lm_head.{dense,layer_norm}, lm_head.bias -> mlm_head.{transform,norm,bias}
Every decoder (cls.predictions.decoder, lm_head.decoder, GPT-2's lm_head) is tied to the word
embeddings, as jaxlm's is (GPT-NeoX's and ESM's but where a token-type row is folded into the
input embeddings). RoBERTa-family MLM heads apply exact GELU whatever `hidden_act` says, and
ESM's MLP and MLM head always do, so only exact-GELU models map onto them. RoBERTa numbers
positions from pad_token_id + 1 and gives [PAD] tokens the pad row: the logits agree on inputs
without [PAD] tokens between real ones (trailing padding under an attention mask is fine). A
token-type table of zeros is what jaxlm writes for a model without token types, so it loads as
`type_vocab_size=0`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EncoderLayout:
  """Where one BERT-like transformers family keeps jaxlm's parameters (names after `_canonical`,
  i.e. without the base-model prefix). Import and export both read it, so they cannot drift."""

  model_type: str
  archs: tuple[str, ...]  # the classes jaxlm reads; archs[0] is the one an `mlm` run exports to
  prefix: str  # the base model's name inside a task model's checkpoint
  norm: str  # jaxlm's model.norm
  norms: tuple[tuple[str, str], ...]  # model-level LayerNorms: (HF name, jaxlm module)
  attn_norm: str  # per layer: the LayerNorm around attention
  mlp_norm: str  # per layer: the LayerNorm around the MLP
  head_dense: str
  head_norm: str
  head_biases: tuple[str, ...]  # the decoder bias, stored under one or both names
  decoder: str
  # The MLM head's activation when the class fixes it (RoBERTa's `gelu()`), else None: the
  # model's hidden_act, as BERT's transform uses.
  head_activation: str | None
  position_offset: bool  # positions start at pad_token_id + 1 (fairseq's make_positions)
  type_rows: int  # the token-type rows written for a model without token types (zeros)

  @property
  def embed_norm(self) -> bool:
    return any(ours == "backbone.embed_norm" for _, ours in self.norms)

  def plain(self) -> tuple[tuple[str, str], ...]:
    """Per-layer tensors that map one to one: (HF name, name inside a jaxlm block)."""
    return (("attention.output.dense.bias", "attn.out.bias"),
            ("intermediate.dense.bias", "mlp.fc_in.bias"),
            ("output.dense.bias", "mlp.fc_out.bias"),
            (f"{self.attn_norm}.weight", "attn_norm.scale"),
            (f"{self.attn_norm}.bias", "attn_norm.bias"),
            (f"{self.mlp_norm}.weight", "mlp_norm.scale"),
            (f"{self.mlp_norm}.bias", "mlp_norm.bias"))


_ROBERTA_HEAD = dict(head_dense="lm_head.dense", head_norm="lm_head.layer_norm",
                     head_biases=("lm_head.bias", "lm_head.decoder.bias"),
                     decoder="lm_head.decoder.weight", head_activation="gelu_exact",
                     position_offset=True, type_rows=1)
BERT = EncoderLayout(
  model_type="bert", archs=("BertForMaskedLM", "BertModel", "BertForPreTraining"), prefix="bert.",
  norm="post", norms=(("embeddings.LayerNorm", "backbone.norm"),),
  attn_norm="attention.output.LayerNorm", mlp_norm="output.LayerNorm",
  head_dense="cls.predictions.transform.dense", head_norm="cls.predictions.transform.LayerNorm",
  head_biases=("cls.predictions.bias", "cls.predictions.decoder.bias"),
  decoder="cls.predictions.decoder.weight", head_activation=None, position_offset=False,
  type_rows=2)
ROBERTA_PRELN = EncoderLayout(
  model_type="roberta-prelayernorm",
  archs=("RobertaPreLayerNormForMaskedLM", "RobertaPreLayerNormModel"),
  prefix="roberta_prelayernorm.", norm="pre",
  norms=(("embeddings.LayerNorm", "backbone.embed_norm"), ("LayerNorm", "backbone.norm")),
  attn_norm="attention.LayerNorm", mlp_norm="intermediate.LayerNorm", **_ROBERTA_HEAD)
XLMR_XL = EncoderLayout(
  model_type="xlm-roberta-xl", archs=("XLMRobertaXLForMaskedLM", "XLMRobertaXLModel"),
  prefix="roberta.", norm="pre", norms=(("encoder.LayerNorm", "backbone.norm"),),
  attn_norm="attention.self_attn_layer_norm", mlp_norm="LayerNorm", **_ROBERTA_HEAD)
ENCODERS = {layout.model_type: layout for layout in (BERT, ROBERTA_PRELN, XLMR_XL)}
# ESM-2's masked LM: pre-LN with rotary positions (export only, so not among ENCODERS).
ESM = EncoderLayout(
  model_type="esm", archs=("EsmForMaskedLM",), prefix="esm.", norm="pre",
  norms=(("embeddings.layer_norm", "backbone.embed_norm"),
         ("encoder.emb_layer_norm_after", "backbone.norm")),
  attn_norm="attention.LayerNorm", mlp_norm="LayerNorm", head_dense="lm_head.dense",
  head_norm="lm_head.layer_norm", head_biases=("lm_head.bias",), decoder="lm_head.decoder.weight",
  head_activation="gelu_exact", position_offset=False, type_rows=0)
GPT2_ARCHS = ("GPT2LMHeadModel", "GPT2Model")
NEOX_ARCH = "GPTNeoXForCausalLM"  # a clm run with RoPE exports to it
NSP_ARCH = "BertForPreTraining"  # the one class holding BERT's next-sentence head
TYPES = "embeddings.token_type_embeddings.weight"

# HF activation names -> jaxlm's. "gelu" is erf-based in both BERT and GPT-2; "gelu_new" and
# "gelu_pytorch_tanh" are the tanh approximation.
HF_TO_ACTIVATION = {"gelu": "gelu_exact", "gelu_python": "gelu_exact", "gelu_new": "gelu_tanh",
                    "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh"}
ACTIVATION_TO_HF = {"gelu_exact": "gelu", "gelu_tanh": "gelu_new"}

# Per-layer encoder tensors transposed from HF's (out, in): (HF name, jaxlm name).
ENCODER_LINEAR = (("intermediate.dense.weight", "mlp.fc_in.kernel"),
                  ("output.dense.weight", "mlp.fc_out.kernel"))
# GPT-NeoX's per-layer tensors that map one to one, and those transposed from (out, in).
NEOX_PLAIN = (
  ("input_layernorm.weight", "attn_norm.scale"), ("input_layernorm.bias", "attn_norm.bias"),
  ("attention.dense.bias", "attn.out.bias"),
  ("post_attention_layernorm.weight", "mlp_norm.scale"),
  ("post_attention_layernorm.bias", "mlp_norm.bias"),
  ("mlp.dense_h_to_4h.bias", "mlp.fc_in.bias"), ("mlp.dense_4h_to_h.bias", "mlp.fc_out.bias"))
NEOX_LINEAR = (("mlp.dense_h_to_4h.weight", "mlp.fc_in.kernel"),
               ("mlp.dense_4h_to_h.weight", "mlp.fc_out.kernel"))
GPT2_PLAIN = (
  ("ln_1.weight", "attn_norm.scale"), ("ln_1.bias", "attn_norm.bias"),
  ("attn.c_proj.bias", "attn.out.bias"),
  ("mlp.c_fc.weight", "mlp.fc_in.kernel"), ("mlp.c_fc.bias", "mlp.fc_in.bias"),
  ("mlp.c_proj.weight", "mlp.fc_out.kernel"), ("mlp.c_proj.bias", "mlp.fc_out.bias"),
  ("ln_2.weight", "mlp_norm.scale"), ("ln_2.bias", "mlp_norm.bias"))
QKV = ("query", "key", "value")
