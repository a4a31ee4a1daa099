"""BERT (MLM) vs GPT (CLM) past the compute threshold, on one GPU: both objectives pre-trained
on 199.9M tokens each (12,200 steps of 64 x 256) at the L4-D256 shape (4 layers, width 256, 4
heads of 64, MLP 1024, RoPE, bfloat16, V = 16,384, 30% masking: `scale/gpu`'s L4-D256 point,
compare/tiny's recipe scaled up), 5.0e15 FLOPs for MLM (its last layer runs at the masked
positions alone) and 9.4e15 for CLM; then BLiMP on all 67,000 pairs with its references, and
the shipped goemotions_sentiment task fine-tuned on all 16,000 training examples with 5 seeds,
beside the untrained baselines (`none`, `none_causal`).

Data: the text files under CORPUS, relative to the directory jaxlm runs in: 195 public-domain
Project Gutenberg books by 80 authors (92 MB, some 25M tokens, so 200M tokens are about 8
passes; `benchmarks/gpu_prepare.sh` packs them, `benchmarks/gpu_run.sh` unpacks them there).
Point it at your own text instead:

  jaxlm compare --config compare/gpu --workdir runs/compare-gpu \
    --config.pretrain.data.source=text:/data/books      # or tfds:NAME

Time on one H100, estimated from the step throughputs measured on an H200 at exactly this shape
and batch (`benchmarks/results/scale_gpu_cost.json`: MLM 3.30M, CLM 2.75M tokens/s) and taken
1.43x slower (the H100's 3.35 TB/s against the H200's 4.8, the bound for a memory-bound step;
the bf16 peak is the same; tests/launch/test_gpu_run.py redoes this arithmetic):
- pre-training: MLM 87 s, CLM 104 s of steps (61 s and 73 s on the H200), 17 s of compilation,
  and once the tokenizer and the tokenized corpus (not measured on a GPU machine; training the
  BPE on 30 MB of these books took 17 s on 2 CPU cores): about 4 minutes, inside the 6 allowed;
- BLiMP on every pair (not measured on a GPU): MLM's pseudo-log-likelihood scores one row per
  token, 1.55M rows of 35 distinct lengths (with a 16,384-token BPE of these books) in 12,200
  calls of 128, each length compiled once; CLM 1,050 calls in 5 lengths: 1 to 2 minutes;
- fine-tuning (not measured on a GPU): 4 arms (mlm, clm and the untrained `none` and
  `none_causal`) x 5 seeds x 1,000 steps of 32 examples, one compilation per arm: about 2
  minutes;
so about 8 minutes for the whole comparison. `benchmarks/gpu_run.sh` records each stage's wall
time.
"""

import dataclasses

from jaxlm.config import load_config, override
from jaxlm.studies.config import CompareConfig, ScaleConfig

CORPUS = "text:.corpus/gutenberg-books"  # where benchmarks/gpu_run.sh unpacks the books
TOKENS = 200_000_000  # pre-training tokens per objective (12,200 steps of 64 x 256: 199.9M)

# scale/gpu's pre-training config (compare/tiny's recipe at sequences of 256, batch 64, bf16,
# V = 16,384, lr 1e-3) at its L4-D256 point, the size whose steps were timed on a GPU.
SHAPE = {"model.num_layers": "4", "model.embed_dim": "256", "model.num_heads": "4",
         "model.mlp_dim": "1024"}


def get_config() -> CompareConfig:
  scale = load_config("scale/gpu", expected=ScaleConfig)
  tokens_per_step = scale.pretrain.batch_size * scale.pretrain.seq_len
  steps = round(TOKENS / tokens_per_step / 100) * 100
  pretrain = override(scale.pretrain, {
    **SHAPE, "steps": str(steps), "data.source": CORPUS, "log_every": "200",
    "eval_every": str(steps // 10),  # a held-out learning curve of 10 points (4 batches each)
    # The learning curve by tokens seen (BabyLM's milestones): checkpoints kept at each.
    "checkpoint_tokens": "1e6,2e6,5e6,1e7,2e7,5e7,1e8",
    # scale/gpu's rule: warmup over 5% of the steps
    "optimizer.warmup_steps": str(round(scale.warmup_frac * steps))})
  return CompareConfig(
    pretrain=pretrain, objectives=("mlm", "clm"), baseline=True,
    zero_shot=("blimp",), zero_shot_sample=0, tasks=("goemotions_sentiment",),
    finetune=dataclasses.replace(scale.finetune, seeds=5, max_train_examples=0))
