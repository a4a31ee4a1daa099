"""Using a trained model from Python: `load` a jaxlm run or a Hugging Face BERT / GPT-2 directory,
then read its logits or fill in a [MASK].

  import jaxlm
  lm = jaxlm.load("runs/tiny-mlm")       # or a transformers save_pretrained() directory
  logits_BxTxV = lm.logits(ids_BxT)
  lm.fill_mask("the [MASK] sat on the mat")    # an MLM run: [(token, probability), ...]
  lm.score(["The cat sleeps.", "The cat sleep."])  # log-probabilities (PLL for MLM), nats
  jaxlm.load("runs/tiny-clm").generate("The cat")  # one prompt in, one continuation out

Everything runs on one device, unsharded, in the run's compute dtype unless told otherwise:
`on_mesh(lm, mesh)` lays the parameters out over a device mesh as training does, and scoring
(`score`, the zero-shot tasks, the lm-evaluation-harness adapter) then shards its rows over the
mesh's data x fsdp axes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from flax import nnx
from jax.sharding import Mesh
from tokenizers import Tokenizer

from jaxlm import objectives, scoring, sharding, storage
from jaxlm.config import Config, ConfigError, DataError, MeshConfig
from jaxlm.data import tokenizer
from jaxlm.data.tokenizer import MASK, SPECIALS
from jaxlm.generate import generate, unmask
from jaxlm.interop import hf_import
from jaxlm.model import LanguageModel
from jaxlm.objectives.base import Objective
from jaxlm.objectives.build import abstract_model
from jaxlm.train.checkpoint import restore_params


@dataclasses.dataclass
class Pretrained:
  """A model ready for inference, with the tokenizer and config it was trained with."""

  model: LanguageModel
  tokenizer: Tokenizer | None
  config: Config
  # How `score` and the zero-shot tasks score a sentence (`scoring.sentence_scores`): "auto"
  # (causal where the model generates, else PLL), "causal" or "pll" (masked LMs, the hybrid).
  scoring: str = "auto"
  _forward: tuple[nnx.GraphDef, Callable[..., jax.Array]] | None = dataclasses.field(
    default=None, repr=False, compare=False)
  # The mesh the parameters lie on (`on_mesh`); None: one device.
  mesh: Mesh | None = dataclasses.field(default=None, repr=False, compare=False)

  @property
  def params(self) -> nnx.State:
    return nnx.state(self.model, nnx.Param)

  def logits(self, token_ids: np.ndarray, prefix_len: int | np.ndarray | None = None) -> np.ndarray:
    """Logits (B, T, V) in float32 at every position of `token_ids` (B, T), all positions real.

    clm: next-token logits under causal attention. mlm: the MLM head under bidirectional
    attention. prefix_lm: next-token logits, bidirectional over the first `prefix_len` tokens
    (an int or one per row; default 0, i.e. causal). V is the model's (padded) vocabulary.
    """
    tokens_BxT = np.asarray(token_ids)
    if tokens_BxT.ndim != 2 or not np.issubdtype(tokens_BxT.dtype, np.integer):
      raise ValueError(f"token_ids: expected a (B, T) integer array, got {tokens_BxT.dtype} "
                       f"{tokens_BxT.shape}")
    m = self.config.model
    if m.position == "learned" and tokens_BxT.shape[1] > m.max_seq_len:
      raise ValueError(f"token_ids: {tokens_BxT.shape[1]} positions exceed the model's "
                       f"max_seq_len={m.max_seq_len}")
    if tokens_BxT.size and (tokens_BxT.min() < 0 or tokens_BxT.max() >= m.vocab_size):
      raise ValueError(f"token_ids: ids must lie in [0, {m.vocab_size})")
    B = tokens_BxT.shape[0]
    prefix_len_B = np.broadcast_to(np.asarray(0 if prefix_len is None else prefix_len), (B,))
    graphdef, state = nnx.split(self.model)
    if self._forward is None or self._forward[0] != graphdef:  # compiled once per structure
      self._forward = (graphdef, _make_forward(graphdef, objectives.get(self.config.objective)))
    return np.asarray(self._forward[1](state, jnp.asarray(tokens_BxT, jnp.int32),
                                       jnp.asarray(prefix_len_B, jnp.int32)))


  def generate(self, prompts: str | Sequence[str], max_new_tokens: int = 50, **sampling
               ) -> str | list[str]:
    """Continuations (prompt + generated text): a plain string is one prompt and gives one
    string; a list gives a list. `sampling`: temperature, top_k, top_p, seed, and for mdlm
    steps (`generate_text`)."""
    if isinstance(prompts, str):
      return generate_text(self, [prompts], max_new_tokens, **sampling)[0]
    return generate_text(self, list(prompts), max_new_tokens, **sampling)

  def fill_mask(self, text: str, top_k: int = 5) -> list[tuple[str, float]]:
    """The `top_k` likeliest tokens, with probabilities, for the first [MASK] in `text`."""
    return fill_mask(self, text, top_k)

  def score(self, sentences: str | Sequence[str]) -> float | np.ndarray:
    """Each sentence's log-probability in nats, as the zero-shot tasks score it: summed
    next-token log-probabilities for generating objectives, the word-level pseudo-log-
    likelihood for masked ones (docs/eval.md). A plain string gives one float."""
    if self.tokenizer is None:
      raise DataError("score: the model was loaded without a tokenizer")
    if isinstance(sentences, str):
      return float(scoring.sentence_scores(self, [sentences])[0])
    return scoring.sentence_scores(self, list(sentences))


Loaded = Pretrained  # its earlier name, kept for scripts that use it


def _make_forward(graphdef: nnx.GraphDef, objective: Objective) -> Callable[..., jax.Array]:
  # The weights are an argument, not closed over: closed-over arrays become program constants.
  # (The graphdef is closed over: it holds the unhashable config, so it cannot be static.)
  @jax.jit
  def forward(state: nnx.State, tokens_BxT: jax.Array, prefix_len_B: jax.Array) -> jax.Array:
    return objective.inference_logits(nnx.merge(graphdef, state), tokens_BxT, prefix_len_B)

  return forward


def load(path: str | os.PathLike, *, dtype: str | None = None) -> Pretrained:
  """A jaxlm run directory (its newest checkpoint) or a Hugging Face BERT / GPT-2 directory
  (config.json + model.safetensors). `dtype` overrides the compute dtype (e.g. 'float32' to
  read a bf16-trained run exactly). Raises DataError (one line) on what it cannot load."""
  path = storage.path(path)
  if (path / "checkpoints").is_dir():
    config, params = _load_run(path)
    tok_path = path / "tokenizer.json"
    tok = Tokenizer.from_str(tok_path.read_text(encoding="utf-8")) if tok_path.is_file() else None
  elif (path / "config.json").is_file():
    config, params = hf_import.from_hf(path)
    tok = _hf_tokenizer(path)
  else:
    raise DataError(f"{path}: neither a jaxlm run directory (with checkpoints/) nor a Hugging "
                    "Face model directory (with config.json)")
  return from_params(config, params, tok, dtype=dtype)


def from_params(config: Config, params: nnx.State, tokenizer: Tokenizer | None, *,
                dtype: str | None = None) -> Pretrained:
  """A model for inference from parameters already in memory (e.g. a study's restored run),
  on one device."""
  # Inference needs none of the training machinery, and a GPU-only kernel must not stop a CPU.
  config = dataclasses.replace(config, mesh=MeshConfig(1, 1, 1), model=dataclasses.replace(
    config.model, attention="auto", remat="none", dtype=dtype or config.model.dtype)).validate()
  graphdef, _ = abstract_model(config)
  model = nnx.merge(graphdef, jax.device_put(params, jax.devices()[0]))
  return Pretrained(model=model, tokenizer=tokenizer, config=config)


MESHES = ("auto", "none", "data", "fsdp", "DATA,FSDP,TENSOR")


def scoring_mesh(spec: str) -> Mesh | None:
  """A mesh over this process's devices for scoring, by name: "none" (one device), "data" (rows
  over every device, parameters replicated), "fsdp" (rows and parameters sharded over every
  device), "D,F,T" (those axis sizes, -1 filling), "auto" ("data" where there are several
  devices, else "none"). A bad name or a mesh the devices do not fit: ConfigError (one line)."""
  devices = jax.local_devices()
  named = {"none": None, "data": MeshConfig(-1, 1, 1), "fsdp": MeshConfig(1, -1, 1),
           "auto": MeshConfig(-1, 1, 1) if len(devices) > 1 else None}
  if spec in named:
    config = named[spec]
  else:
    sizes = spec.split(",")
    try:
      if len(sizes) != 3:
        raise ValueError(spec)
      config = MeshConfig(*(int(n) for n in sizes)).validate()
    except ValueError:
      raise ConfigError(f"mesh={spec!r}; allowed: {', '.join(MESHES)}") from None
  return None if config is None else sharding.make_mesh(config, devices)


def on_mesh(lm: Pretrained, mesh: Mesh | None) -> Pretrained:
  """`lm` with its parameters laid out on `mesh` by their logical axes, as training lays them
  out (fsdp and tensor shard the weights; data replicates them), so scoring shards its rows over
  data x fsdp. None: on one device, as `load` gives it."""
  if mesh is None and lm.mesh is None:
    return lm
  graphdef, state = nnx.split(lm.model)
  if mesh is None:
    return dataclasses.replace(lm, model=nnx.merge(graphdef, jax.device_put(
      state, jax.local_devices()[0])), mesh=None, _forward=None)
  _, abstract = abstract_model(lm.config)
  shardings = sharding.named(mesh, sharding.param_specs(abstract))
  with jax.set_mesh(mesh):
    model = nnx.merge(graphdef, jax.device_put(state, shardings))
  return dataclasses.replace(lm, model=model, mesh=mesh, _forward=None)


def _load_run(run_dir: epath.Path) -> tuple[Config, nnx.State]:
  """The run's saved config and its newest checkpoint's parameters, on one device."""
  config, params = restore_params(run_dir, sharding.make_mesh(MeshConfig(1, 1, 1),
                                                              jax.devices()[:1]))
  return dataclasses.replace(config, mesh=MeshConfig(1, 1, 1)), params


def _hf_tokenizer(hf_dir: epath.Path) -> Tokenizer | None:
  """tokenizer.json as is; else BERT's vocab.txt or GPT-2's vocab.json + merges.txt."""
  if (hf_dir / "tokenizer.json").is_file():
    return Tokenizer.from_str((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
  if any((hf_dir / n).is_file() for n in ("vocab.txt", "vocab.json")):
    return tokenizer.load_file(hf_dir)
  return None


def fill_mask(loaded: Pretrained, text: str, top_k: int = 5) -> list[tuple[str, float]]:
  """The `top_k` likeliest tokens, with probabilities, for the first [MASK] in `text`
  (an mlm model with a tokenizer; the text is encoded with the tokenizer's own template)."""
  tok = loaded.tokenizer
  objective = loaded.config.objective
  if objectives.get(objective).head != "mlm_transform":
    fills = ", ".join(n for n, o in objectives.OBJECTIVES.items() if o.head == "mlm_transform")
    raise DataError(f"fill-mask: this is a {objective} model, which cannot fill masks; it needs "
                    f"one pre-trained with {fills}"
                    + ("; use generate" if objectives.get(objective).generates else ""))
  if tok is None:
    raise DataError("fill-mask: the model was loaded without a tokenizer")
  mask_id = tok.token_to_id(MASK)
  ids = tok.encode(text).ids
  if mask_id is None or mask_id not in ids:
    raise DataError(f"fill-mask: the text {text!r} holds no {MASK} token the tokenizer knows; "
                    f"write {MASK} where the word to predict goes")
  limit = loaded.config.model.max_seq_len
  if loaded.config.model.position == "learned" and len(ids) > limit:
    raise DataError(f"fill-mask: the text is {len(ids)} tokens; the model reads at most "
                    f"max_seq_len={limit}")
  position = ids.index(mask_id)
  logits_V = loaded.logits(np.asarray([ids]))[0, position]
  # Rows past the tokenizer's vocabulary pad the embedding table; they are never real tokens.
  logits_V = logits_V[:min(tok.get_vocab_size(), logits_V.shape[0])]
  probs_V = np.exp(logits_V - logits_V.max())
  probs_V /= probs_V.sum()
  best = np.argsort(-probs_V)[:top_k]
  return [(tok.decode([int(i)], skip_special_tokens=False) or tok.id_to_token(int(i)),
           float(probs_V[i])) for i in best]


def generate_text(loaded: Pretrained, prompts: Sequence[str], max_new_tokens: int = 50,
                  temperature: float = 0.8, top_k: int = 50, top_p: float = 1.0,
                  seed: int = 0, steps: int | None = None) -> list[str]:
  """Continuations of `prompts` with the model's tokenizer: left to right with a KV cache for
  objectives that generate (clm, prefix_lm, hybrid), stopping at [SEP]; by iterative unmasking
  for masked diffusion (mdlm): `max_new_tokens` tokens exactly, revealed over `steps` steps
  (default max_new_tokens) after the token documents open with and the prompt."""
  if isinstance(prompts, str):  # not 13 one-character prompts
    raise TypeError("generate_text: prompts is a list of strings; for one prompt use "
                    "[prompt] or lm.generate(prompt)")
  record = objectives.get(loaded.config.objective)
  if not (record.generates or record.unmasks):
    makers = ", ".join(n for n, o in objectives.OBJECTIVES.items() if o.generates or o.unmasks)
    raise DataError(f"generate: this is an {loaded.config.objective} model; use fill-mask "
                    f"(generation needs one of {makers})")
  if steps is not None and not record.unmasks:
    raise DataError(f"generate: steps={steps} is for generation by unmasking (mdlm); a "
                    f"{record.name} model generates left to right, one token a step")
  if loaded.tokenizer is None:
    raise DataError("generate: the model directory holds no tokenizer")
  tok = loaded.tokenizer
  ids = [tok.encode(p, add_special_tokens=False).ids for p in prompts]
  for i, (prompt, p_ids) in enumerate(zip(prompts, ids)):
    if not p_ids:
      raise DataError(f"generate: prompt {i + 1} ({prompt!r}) encodes to no tokens; every "
                      "prompt needs at least one")
  if record.unmasks:
    start = tok.token_to_id(scoring.context_token(loaded))
    banned = tuple(i for name in SPECIALS if (i := tok.token_to_id(name)) is not None)
    out = unmask(loaded.model, [[start] + p for p in ids], max_new_tokens,
                 mask_id=tok.token_to_id(MASK), steps=steps, temperature=temperature,
                 top_k=top_k, top_p=top_p, seed=seed, banned=banned,
                 vocab_in_use=tok.get_vocab_size())
    return [p + tok.decode(o) for p, o in zip(prompts, out)]
  sep = tok.token_to_id("[SEP]")
  out = generate(loaded.model, ids, max_new_tokens, temperature=temperature, top_k=top_k,
                 top_p=top_p, seed=seed, stop_id=sep, vocab_in_use=tok.get_vocab_size())
  return [p + tok.decode([t for t in o if t != sep]) for p, o in zip(prompts, out)]
