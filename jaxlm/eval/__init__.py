"""Measuring one model: tasks/ (a registry of fine-tuning and zero-shot tasks, their metrics),
scoring (sentence scores for every objective), BLiMP's data, and the context-free references
(ngram: unigram and bigram models of the pre-training tokens; mlm_baseline)."""
