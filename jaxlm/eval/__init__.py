"""Measuring one model: tasks/ (a registry of fine-tuning and zero-shot tasks, their metrics,
scored with jaxlm.scoring), BLiMP's data, the context-free references (ngram: unigram and
bigram models of the pre-training tokens; mlm_baseline), and the lm-evaluation-harness adapter
(lm_eval_model, continuations)."""
