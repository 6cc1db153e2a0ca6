"""`evalkit run` on an OpenAI-compatible API through the fault proxy's stub upstream (fast).

The same scenarios run against the real llama.cpp server in test_api_server.py (slow).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.api_support.fault_proxy import FaultProxy
from tests.helpers import evalkit, log_records


def api_run(proxy: FaultProxy, out: Path, *extra: str, model_args: str = "", tasks: str = "mmlu_gen"
            ) -> tuple[Any, list[dict[str, Any]]]:
    args = ["run", "--model", f"openai-compat:{proxy.url}#stub", "--tasks", tasks, "--limit", "1",
            "--output-dir", str(out / "runs"), "--cache-dir", str(out / "cache"), "--no-progress", *extra]
    if model_args:
        args += ["--model-args", model_args]
    result = evalkit(*args, timeout=300)
    logs = sorted((out / "runs").rglob("*.jsonl"))
    return result, (log_records(logs[0]) if len(logs) == 1 else [])


def samples(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The latest record per sample id (a resumed log appends retried samples)."""
    return {r["id"]: r for r in records if r["type"] == "sample"}


def test_errors_after_retries_are_recorded_and_only_they_are_retried(stub_proxy: FaultProxy, tmp_path: Path) -> None:
    stub_proxy.configure(rates={"500": 0.4}, seed=1)
    first, records = api_run(stub_proxy, tmp_path, model_args="max_attempts=2")
    assert first.returncode == 1, first.stderr
    errored = {sid for sid, r in samples(records).items() if r["error"]}
    summary = records[-1]
    assert summary["type"] == "summary" and summary["n_errors"] == len(errored) > 0
    assert summary["n_scored"] == 57 - len(errored)
    assert summary["results"]["overall"]["acc"]["n"] == 57 - len(errored)
    assert all("gave up after 2 attempts" in samples(records)[sid]["error"] for sid in errored)
    # a re-sent greedy answer brings its 1-token partner (first-token logprobs), even when
    # the choice response it would serve is already cached
    failed_answers = sum(1 for sid in errored if samples(records)[sid]["responses"][0].get("error"))
    failed_choices_only = sum(1 for sid in errored if samples(records)[sid]["responses"][1].get("error")
                              and not samples(records)[sid]["responses"][0].get("error"))

    stub_proxy.configure(rates={})
    stub_proxy.reset_stats()
    second, records = api_run(stub_proxy, tmp_path, model_args="max_attempts=2")
    assert second.returncode == 0, second.stderr
    # only the failed requests of the errored samples went out again; the rest came from the cache
    assert stub_proxy.stats["requests"] == 2 * failed_answers + failed_choices_only
    assert records[-1]["n_errors"] == 0 and len(samples(records)) == 57


def test_cached_rerun_sends_nothing_and_usage_and_cost_are_logged(stub_proxy: FaultProxy, tmp_path: Path) -> None:
    prices = "price_prompt_per_1k=1.5,price_completion_per_1k=2"
    first, records = api_run(stub_proxy, tmp_path, model_args=prices)
    assert first.returncode == 0, first.stderr
    sent = stub_proxy.stats["requests"]
    # two calls per sample: the answer and, sent with it, a 1-token request for its first
    # token's alternatives (the choice probabilities), each with its own usage
    assert sent == 2 * 57
    for record in samples(records).values():
        answer, choice = record["responses"]
        assert answer["usage"]["prompt_tokens"] > 0 and answer["usage"]["completion_tokens"] > 0
        assert choice["meta"]["source"].startswith("1-token request") and choice["usage"]["completion_tokens"] == 1
        assert record["score"]["extras"]["probs"]  # calibration inputs from choice_logprobs
    engine = records[-1]["engine"]
    expected = (engine["prompt_tokens"] * 1.5 + engine["completion_tokens"] * 2) / 1000
    assert engine["cost_usd"] == pytest.approx(expected, rel=1e-4) and expected > 0
    ece = [m for name, m in records[-1]["results"]["overall"].items() if name.startswith("ece")]
    assert ece and all(m["n"] == 57 for m in ece)

    stub_proxy.reset_stats()
    again, records = api_run(stub_proxy, tmp_path, "--overwrite", model_args=prices)
    assert again.returncode == 0, again.stderr
    assert stub_proxy.stats["requests"] == 0
    assert records[-1]["engine"]["cache_hits"] == 2 * 57 and records[-1]["engine"].get("cost_usd") == 0


def test_dry_run_counts_requests_and_sends_nothing(stub_proxy: FaultProxy, tmp_path: Path) -> None:
    result, records = api_run(stub_proxy, tmp_path, "--dry-run", tasks="mmlu_gen,ceval_gen",
                              model_args="price_prompt_per_1k=1,price_completion_per_1k=1")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith(("mmlu", "ceval"))}
    assert rows["mmlu_gen"][1:3] == ["57", "114"] and rows["ceval_gen"][1:3] == ["52", "104"]
    assert stub_proxy.stats["requests"] == 0 and records == [] and not (tmp_path / "cache").exists()


def test_bad_model_args_fail_before_any_request(stub_proxy: FaultProxy, tmp_path: Path) -> None:
    result, records = api_run(stub_proxy, tmp_path, model_args="api_key=sk-live-123456789")
    assert result.returncode == 2 and "api_key is not accepted" in result.stderr
    assert "sk-live-123456789" not in result.stderr
    assert stub_proxy.stats["requests"] == 0 and records == []


def test_a_planted_key_reaches_the_server_but_no_file_or_output(stub_proxy: FaultProxy, tmp_path: Path) -> None:
    key = f"sk-test-{secrets.token_hex(16)}"
    # some answers are 401s that quote the key back, as OpenAI's do
    stub_proxy.configure(rates={"401": 0.2, "500": 0.1}, seed=5)
    args = ["-v", "run", "--model", "openai:stub", "--model-args", f"base_url={stub_proxy.url},max_attempts=2",
            "--tasks", "mmlu_gen,ceval_gen", "--limit", "1", "--output-dir", str(tmp_path / "runs"),
            "--cache-dir", str(tmp_path / "cache")]
    result = evalkit(*args, env={"OPENAI_API_KEY": key}, timeout=300)
    assert result.returncode == 1, result.stderr  # the 401s are recorded errors
    assert f"Bearer {key}" in stub_proxy.authorizations and stub_proxy.stats["fault_401"] > 0
    assert_nowhere(key, tmp_path, result.stdout + result.stderr)
    errors = [r["error"] for p in (tmp_path / "runs").rglob("*.jsonl") for r in log_records(p) if r.get("error")]
    assert any("HTTP 401: Incorrect API key provided: ***" in e for e in errors)


def assert_nowhere(secret: str, root: Path, output: str) -> None:
    assert secret not in output
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files  # logs and the cache were written
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
