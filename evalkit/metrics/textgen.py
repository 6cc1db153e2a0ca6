"""Diversity, length, classification and embedding metrics for generated text.

Tokens are whitespace-split words, case kept, everywhere in this module (named so results say
how they were counted). Definitions, each named in the result (see docs/generation-metrics.md):

- `distinct_n_corpus`: |unique n-grams over all outputs| / |n-grams over all outputs|
  (Li et al., 2016, the common reading).
- `distinct_n_mean`: the mean over outputs of |unique n-grams| / |n-grams| within one output
  (outputs with no n-gram are left out of the mean).
- `self_bleu`: the mean over outputs of sacrebleu sentence BLEU (13a, exp smoothing, effective
  order) of the output against all the others as references (Zhu et al., 2018); 0-100.
- Embedding metrics (Liu et al., 2016) over word vectors: embedding average (cosine of the
  mean vectors), vector extrema (per dimension the value of largest magnitude, then cosine),
  greedy matching (mean over both directions of the mean best cosine per word), and a
  BERTScore-style P/R/F1 (Zhang et al., 2020: best cosine per token, no idf, no rescaling).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evalkit.metrics.overlap import sacrebleu_metric

Vectors = NDArray[np.float64]  # one row per word


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n_corpus(texts: Sequence[str], n: int) -> float:
    """|unique n-grams across all outputs| / |total n-grams across all outputs| (0 if none)."""
    grams = [g for t in texts for g in ngrams(t.split(), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def distinct_n_per_output(text: str, n: int) -> float | None:
    """|unique n-grams| / |n-grams| of one output; None when it has no n-gram."""
    grams = ngrams(text.split(), n)
    return len(set(grams)) / len(grams) if grams else None


def distinct_n_mean(texts: Sequence[str], n: int) -> float:
    values = [v for v in (distinct_n_per_output(t, n) for t in texts) if v is not None]
    return float(np.mean(values)) if values else 0.0


def self_bleu_per_output(texts: Sequence[str]) -> list[float]:
    """Each output's sentence BLEU against all the other outputs as references."""
    if len(texts) < 2:
        return []
    metric = sacrebleu_metric("bleu", sentence=True)
    return [float(metric.sentence_score(t, [o for j, o in enumerate(texts) if j != i]).score)
            for i, t in enumerate(texts)]


def self_bleu(texts: Sequence[str]) -> float:
    scores = self_bleu_per_output(texts)
    return float(np.mean(scores)) if scores else float("nan")


@dataclass(frozen=True)
class LengthStats:
    mean: float
    std: float
    minimum: int
    p50: float
    p90: float
    maximum: int


def length_stats(lengths: Sequence[int]) -> LengthStats:
    """Mean, sample std (ddof=1), min, median, 90th percentile (linear) and max."""
    arr = np.asarray(lengths, dtype=float)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    p50, p90 = (float(x) for x in np.percentile(arr, [50, 90]))
    return LengthStats(float(arr.mean()), std, int(arr.min()), p50, p90, int(arr.max()))


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float


def precision_recall_f1(gold: Sequence[str], predicted: Sequence[str],
                        labels: Sequence[str] | None = None) -> dict[str, PRF]:
    """`macro` (unweighted mean over labels of per-label P, R, F1) and `micro` (from counts
    pooled over labels). A ratio with a zero denominator is 0 (sklearn's zero_division=0).
    Labels: the given ones, else every label seen in gold or predictions."""
    names = list(labels) if labels is not None else sorted(set(gold) | set(predicted))
    pairs = list(zip(gold, predicted, strict=True))
    tp = Counter(g for g, p in pairs if g == p)
    pred = Counter(p for _, p in pairs)
    true = Counter(g for g, _ in pairs)
    per_label = [_prf(tp[x], pred[x], true[x]) for x in names]
    macro = PRF(*(float(np.mean([getattr(s, f) for s in per_label])) if per_label else 0.0
                  for f in ("precision", "recall", "f1")))
    micro = _prf(sum(tp[x] for x in names), sum(pred[x] for x in names), sum(true[x] for x in names))
    return {"macro": macro, "micro": micro}


def _prf(tp: int, predicted: int, true: int) -> PRF:
    p = tp / predicted if predicted else 0.0
    r = tp / true if true else 0.0
    return PRF(p, r, 2 * p * r / (p + r) if p + r else 0.0)


def _cosine(a: Vectors, b: Vectors) -> float:
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denom if denom else 0.0


def _cosine_matrix(a: Vectors, b: Vectors) -> Vectors:
    an = a / np.clip(np.linalg.norm(a, axis=1, keepdims=True), 1e-12, None)
    bn = b / np.clip(np.linalg.norm(b, axis=1, keepdims=True), 1e-12, None)
    return np.asarray(an @ bn.T, dtype=float)


def embedding_average(hyp: Vectors, ref: Vectors) -> float:
    return _cosine(hyp.mean(axis=0), ref.mean(axis=0))


def extrema_vector(words: Vectors) -> Vectors:
    """Per dimension, the value with the largest magnitude (its sign kept)."""
    idx = np.abs(words).argmax(axis=0)
    return np.asarray(words[idx, np.arange(words.shape[1])], dtype=float)


def vector_extrema(hyp: Vectors, ref: Vectors) -> float:
    return _cosine(extrema_vector(hyp), extrema_vector(ref))


def greedy_matching(hyp: Vectors, ref: Vectors) -> float:
    """(G(ref→hyp) + G(hyp→ref)) / 2, G(a→b) = mean over a's words of the best cosine in b."""
    sims = _cosine_matrix(hyp, ref)
    return float((sims.max(axis=0).mean() + sims.max(axis=1).mean()) / 2)


def bertscore_style(hyp: Vectors, ref: Vectors) -> PRF:
    """P = mean over hyp words of the best cosine in ref; R the other way; F1 their harmonic mean."""
    sims = _cosine_matrix(hyp, ref)
    p, r = float(sims.max(axis=1).mean()), float(sims.max(axis=0).mean())
    return PRF(p, r, 2 * p * r / (p + r) if p + r else 0.0)
