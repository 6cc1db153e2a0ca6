"""Word- and character-overlap metrics: BLEU, chrF, TER (sacrebleu) and ROUGE (rouge-score).

Corpus scores are sacrebleu's own (`corpus_score`, signature string included), so they equal
`sacrebleu REF -i HYP -m bleu chrf ter -l SRC-TGT` on the same lines. The target language
picks BLEU's tokenizer as sacrebleu's command line does (`zh` for Chinese, `13a` otherwise).
The CI is a percentile bootstrap over sentences: each resample sums the sentences' sufficient
statistics and recomputes the corpus score (what sacrebleu's `--confidence` resamples, with
evalkit's percentile rule). Sentence scores (drill-down) use sacrebleu's `sentence_score`;
sentence BLEU with `effective_order=True`, as sacrebleu recommends for single sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evalkit.errors import ConfigError
from evalkit.metrics.stats import bootstrap_interval

SACREBLEU_METRICS = ("bleu", "chrf", "ter")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
#: FLORES-style codes (eng_Latn) or plain ISO codes (en) -> the ISO 639-1 code sacrebleu uses
_ISO = {"eng": "en", "deu": "de", "fra": "fr", "zho": "zh", "jpn": "ja", "kor": "ko"}


def iso_language(code: str) -> str:
    """`zho_Hans` / `zho` / `zh` -> `zh` (sacrebleu keys its tokenizer choice on this)."""
    base = code.split("_")[0].lower()
    return _ISO.get(base, base)


@dataclass(frozen=True)
class CorpusScore:
    """A corpus-level sacrebleu score with its signature and a bootstrap CI over sentences."""

    metric: str
    score: float
    signature: str
    text: str  # sacrebleu's own one-line rendering (e.g. "BLEU = 23.4 55.1/...")
    n: int
    ci_low: float | None = None
    ci_high: float | None = None


def sacrebleu_metric(name: str, target_language: str = "", *, sentence: bool = False) -> Any:
    """A fresh sacrebleu metric object with the command line's defaults for this language."""
    try:
        from sacrebleu.metrics.bleu import BLEU
        from sacrebleu.metrics.chrf import CHRF
        from sacrebleu.metrics.ter import TER
    except ImportError:
        raise ConfigError("BLEU/chrF/TER need sacrebleu: pip install 'evalkit[textgen]'") from None
    if name == "bleu":
        return BLEU(trg_lang=iso_language(target_language) if target_language else "", effective_order=sentence)
    if name == "chrf":
        return CHRF()
    if name == "ter":
        return TER()
    raise ConfigError(f"unknown sacrebleu metric {name!r}; expected one of {', '.join(SACREBLEU_METRICS)}")


def corpus_score(name: str, hypotheses: Sequence[str], references: Sequence[str], target_language: str = "",
                 *, resamples: int = 1000, seed: int = 0) -> CorpusScore:
    """sacrebleu's corpus score (one reference per line) and a percentile-bootstrap CI."""
    _check_lengths(hypotheses, references)
    metric = sacrebleu_metric(name, target_language)
    result = metric.corpus_score(list(hypotheses), [list(references)])
    signature = str(metric.get_signature())
    stats: NDArray[Any] = np.asarray(metric._extract_corpus_statistics(list(hypotheses), [list(references)]))

    def resampled(idx: NDArray[np.int64]) -> float:
        return float(metric._compute_score_from_stats(list(stats[idx].sum(axis=0))).score)

    low, high = bootstrap_interval(resampled, len(hypotheses), resamples=resamples, seed=seed)
    finite = not np.isnan(low)
    return CorpusScore(name, float(result.score), signature, str(result), len(hypotheses),
                       float(low) if finite else None, float(high) if finite else None)


def sentence_scores(name: str, hypotheses: Sequence[str], references: Sequence[str],
                    target_language: str = "") -> list[float]:
    """Per-sentence scores for drill-down (not averaged into the corpus score)."""
    _check_lengths(hypotheses, references)
    metric = sacrebleu_metric(name, target_language, sentence=True)
    return [float(metric.sentence_score(h, [r]).score) for h, r in zip(hypotheses, references, strict=True)]


def paired_bootstrap(baseline: Sequence[str], system: Sequence[str], references: Sequence[str],
                     name: str = "bleu", target_language: str = "", resamples: int = 1000) -> dict[str, Any]:
    """sacrebleu's paired bootstrap resampling (Koehn, 2004) of `system` against `baseline`:
    sacrebleu's `PairedTest(test_type="bs")` as `--paired-bs` runs it (seed 12345)."""
    from sacrebleu.significance import PairedTest

    _check_lengths(baseline, references)
    _check_lengths(system, references)
    metric = sacrebleu_metric(name, target_language)
    test = PairedTest([("baseline", list(baseline)), ("system", list(system))], {name: metric},
                      [list(references)], test_type="bs", n_samples=resamples)
    signatures, results = test()
    (label,) = signatures  # results are keyed by the metric's display name ("BLEU", "chrF2")
    base, other = (r for r in results[label] if not isinstance(r, str))
    return {"metric": name, "baseline": float(base.score), "system": float(other.score),
            "p_value": float(other.p_value or 0.0), "system_mean": float(other.mean or 0.0), "system_ci": float(other.ci or 0.0),
            "signature": str(signatures[label]), "resamples": resamples}


def rouge_scores(hypotheses: Sequence[str], references: Sequence[str], *, stemmer: bool = True,
                 types: Sequence[str] = ROUGE_TYPES) -> list[dict[str, tuple[float, float, float]]]:
    """rouge-score's per-pair (precision, recall, F) for each ROUGE type. rougeLsum splits
    summaries into sentences at newlines (rouge-score's rule; no sentence splitter is run)."""
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise ConfigError("ROUGE needs rouge-score: pip install 'evalkit[textgen]'") from None
    _check_lengths(hypotheses, references)
    scorer = rouge_scorer.RougeScorer(list(types), use_stemmer=stemmer)
    out: list[dict[str, tuple[float, float, float]]] = []
    for hyp, ref in zip(hypotheses, references, strict=True):
        scores: Mapping[str, Any] = scorer.score(ref, hyp)  # rouge-score takes (target, prediction)
        out.append({t: (float(s.precision), float(s.recall), float(s.fmeasure)) for t, s in scores.items()})
    return out


def _check_lengths(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ConfigError(f"{len(hypotheses)} hypotheses but {len(references)} references: they must pair up line by line")
