"""Generation metrics (issue 21) against their reference implementations and hand-worked values."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalkit.errors import ConfigError
from evalkit.metrics import overlap, textgen
from evalkit.metrics.meteor import MetricUnavailable, lexnames_text, meteor_scores
from tests.conftest import SHARED_DATA

FLORES = SHARED_DATA / "flores200" / "devtest"
ROUGE_PAIRS = SHARED_DATA / "rouge_pltrdy_tests"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def _sacrebleu_cli(ref: Path, hyp: Path, langpair: str) -> list[dict[str, str]]:
    out = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-m", "bleu", "chrf", "ter",
                          "-l", langpair, "-w", "6"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("hyp_name", "ref_name", "langpair"), [
    ("eng_Latn", "deu_Latn", "en-de"),  # a poor "system": the English source as German output
    ("fra_Latn", "eng_Latn", "fr-en"),
])
def test_corpus_scores_equal_the_sacrebleu_command_line(tmp_path: Path, hyp_name: str, ref_name: str,
                                                        langpair: str) -> None:
    ref = FLORES / f"{ref_name}.devtest"
    hyp = FLORES / f"{hyp_name}.devtest"
    cli = _sacrebleu_cli(ref, hyp, langpair)
    target = langpair.split("-")[1]
    for metric, expected in zip(overlap.SACREBLEU_METRICS, cli, strict=True):
        got = overlap.corpus_score(metric, _lines(hyp), _lines(ref), target, resamples=50)
        assert got.signature == expected["signature"]
        assert round(got.score, 6) == float(expected["score"])
        assert got.ci_low is not None and got.ci_high is not None and got.ci_low <= got.score <= got.ci_high


def test_chinese_target_uses_the_zh_tokenizer_like_the_cli(tmp_path: Path) -> None:
    ref = FLORES / "zho_Hans.devtest"
    refs = _lines(ref)[:200]
    hyps = [r[:-2] for r in refs]  # a "system" that drops each sentence's last two characters
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    bleu = _sacrebleu_cli(tmp_path / "ref.txt", tmp_path / "hyp.txt", "en-zh")[0]
    got = overlap.corpus_score("bleu", hyps, refs, "zho_Hans", resamples=20)
    assert "tok:zh" in got.signature and got.signature == bleu["signature"]
    assert round(got.score, 6) == float(bleu["score"])


def test_paired_bootstrap_is_sacrebleus() -> None:
    refs = _lines(FLORES / "deu_Latn.devtest")[:100]
    better = [r.rsplit(" ", 1)[0] for r in refs]  # close to the reference
    worse = _lines(FLORES / "eng_Latn.devtest")[:100]
    result = overlap.paired_bootstrap(worse, better, refs, "bleu", "de", resamples=100)
    assert result["system"] > result["baseline"] and result["p_value"] < 0.05


def test_rouge_on_the_pltrdy_pairs_equals_rouge_score_called_directly() -> None:
    from rouge_score import rouge_scorer

    hyps, refs = _lines(ROUGE_PAIRS / "hyp.txt"), _lines(ROUGE_PAIRS / "ref.txt")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    ours = overlap.rouge_scores(hyps, refs)
    for mine, hyp, ref in zip(ours, hyps, refs, strict=True):
        theirs = scorer.score(ref, hyp)
        for kind, (p, r, f) in mine.items():
            assert (p, r, f) == (theirs[kind].precision, theirs[kind].recall, theirs[kind].fmeasure)
    # stemming is on: "cats" matches "cat"
    assert overlap.rouge_scores(["the cats"], ["the cat"])[0]["rouge1"][2] == 1.0
    assert overlap.rouge_scores(["the cats"], ["the cat"], stemmer=False)[0]["rouge1"][2] == 0.5


def test_mismatched_lengths_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="2 hypotheses but 1 references"):
        overlap.corpus_score("bleu", ["a", "b"], ["a"])


def test_meteor_hand_worked() -> None:
    # 5 of 6 words match ("sits"/"sat" do not), in 2 chunks: Fmean = 5/6 (P = R),
    # penalty = 0.5 * (2/5)^3
    got = meteor_scores(["the cat sits on the mat"], ["the cat sat on the mat"])[0]
    assert got == pytest.approx(5 / 6 * (1 - 0.5 * (2 / 5) ** 3), abs=1e-12)
    # "car"/"auto" match only through WordNet synonyms (car.n.01): all 3 words, one chunk
    synonym, other = meteor_scores(["a red car", "a red car"], ["a red auto", "a blue car"])
    assert synonym == pytest.approx(1 - 0.5 * (1 / 3) ** 3, abs=1e-12)
    # without a synonym: "a" and "car" match in 2 chunks -> Fmean 2/3, penalty 0.5 * (2/2)^3
    assert other == pytest.approx(2 / 3 * 0.5, abs=1e-12)


def test_meteor_without_wordnet_says_not_available(tmp_path: Path) -> None:
    with pytest.raises(MetricUnavailable, match="METEOR is not available here: WordNet 3.0 not found"):
        meteor_scores(["a"], ["a"], source=tmp_path)


def test_lexnames_table_matches_the_wordnet_man_page() -> None:
    import gzip

    page = Path("/usr/share/man/man5/lexnames.5WN.gz")
    rows = [line.split("\t")[:2] for line in gzip.decompress(page.read_bytes()).decode().splitlines()
            if line[:2].isdigit() and "\t" in line]
    ours = [line.split("\t")[:2] for line in lexnames_text().splitlines()]
    assert [[n, name.strip()] for n, name in rows] == ours


def test_distinct_n_hand_worked() -> None:
    texts = ["a b a b", "a b c"]
    # unigrams: a b a b a b c -> 3 unique of 7; bigrams: ab ba ab ab bc -> 3 unique of 5
    assert textgen.distinct_n_corpus(texts, 1) == 3 / 7
    assert textgen.distinct_n_corpus(texts, 2) == 3 / 5
    # per output: (2/4 + 3/3) / 2 and (2/3 + 2/2) / 2
    assert textgen.distinct_n_mean(texts, 1) == (2 / 4 + 1) / 2
    assert textgen.distinct_n_mean(texts, 2) == (2 / 3 + 1) / 2
    assert textgen.distinct_n_per_output("a", 2) is None


def test_self_bleu_hand_worked() -> None:
    # each output against the other: precisions 4/5, 3/4, 2/3, 1/2, brevity penalty 1
    texts = ["a b c d e", "a b c d f"]
    assert textgen.self_bleu(texts) == pytest.approx(100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25, abs=1e-9)
    assert textgen.self_bleu(["x y z w", "x y z w", "x y z w"]) == pytest.approx(100.0)


def test_length_stats_against_numpy() -> None:
    lengths = [3, 9, 4, 10, 1]
    stats = textgen.length_stats(lengths)
    assert (stats.mean, stats.minimum, stats.maximum, stats.p50) == (5.4, 1, 10, 4.0)
    assert stats.std == pytest.approx(float(np.std(lengths, ddof=1)))
    assert stats.p90 == pytest.approx(9.6)  # linear interpolation between 9 and 10


def test_precision_recall_f1_against_sklearn() -> None:
    from sklearn.metrics import precision_recall_fscore_support

    gold = ["a", "b", "c", "a", "b", "a", "c", "c", "d"]
    pred = ["a", "b", "b", "a", "c", "c", "c", "a", "b"]
    ours = textgen.precision_recall_f1(gold, pred)
    for average in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(gold, pred, average=average, zero_division=0)
        assert (ours[average].precision, ours[average].recall, ours[average].f1) == pytest.approx((p, r, f))


def test_embedding_metrics_hand_worked() -> None:
    hyp = np.array([[1.0, 0.0], [0.0, 1.0]])
    ref = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, -2.0]])
    # averages: (0.5, 0.5) and (2/3, -2/3): orthogonal
    assert textgen.embedding_average(hyp, ref) == pytest.approx(0.0)
    # extrema: hyp (1, 1); ref (1, -2) -> cos = (1 - 2) / (sqrt 2 * sqrt 5)
    assert textgen.vector_extrema(hyp, ref) == pytest.approx(-1 / math.sqrt(10))
    # hyp words' best cosines: 1, 0 -> P = 1/2; ref words': 1, 1, 0 -> R = 2/3
    prf = textgen.bertscore_style(hyp, ref)
    assert (prf.precision, prf.recall) == pytest.approx((0.5, 2 / 3))
    assert prf.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert textgen.greedy_matching(hyp, ref) == pytest.approx((0.5 + 2 / 3) / 2)
