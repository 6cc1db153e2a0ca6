"""Acceptance against the real llama.cpp server (SmolLM2) behind the fault proxy (slow).

MMLU and C-Eval with --limit 1 (one item per subject: 57 and 52 items), generative letter
answers through chat. The clean runs are shared: the faulty run and the cached re-run must
reproduce them. The server serialises requests (~0.5-3 s per item on 2 cores): minutes.
"""

from __future__ import annotations

import secrets
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.api.test_api_cli import assert_nowhere, samples
from tests.api_support.fault_proxy import FaultProxy
from tests.helpers import evalkit, log_records

pytestmark = pytest.mark.slow

#: 20% of requests fail, in every way the proxy knows
MIXED_20 = {"429": 0.05, "500": 0.05, "timeout": 0.02, "malformed": 0.04, "truncated": 0.04}
#: how each injected fault shows in the log's retry history
LOGGED_KIND = {"429": "rate_limit", "500": "server", "timeout": "timeout", "malformed": "malformed",
               "truncated": "connection"}


def api_run(proxy: FaultProxy, out: Path, task: str, *extra: str, model_args: str = "") -> tuple[Any, list[dict[str, Any]]]:
    args = ["run", "--model", f"openai-compat:{proxy.url}#smollm2", "--tasks", task, "--limit", "1",
            "--output-dir", str(out / "runs"), "--cache-dir", str(out / "cache"), "--no-progress", *extra]
    if model_args:
        args += ["--model-args", model_args]
    result = evalkit(*args, timeout=900)
    logs = sorted((out / "runs").rglob(f"{task}-*.jsonl"))
    assert len(logs) == 1, (logs, result.stderr[-2000:])
    return result, log_records(logs[0])


def verdicts(records: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    return {sid: (r["score"]["extracted"], r["score"]["value"]) for sid, r in samples(records).items()}


@pytest.fixture(scope="module")
def clean(llama_proxy_session: FaultProxy, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    proxy = llama_proxy_session
    proxy.configure(latency_s=0.0, rates={}, rps=None)
    out = tmp_path_factory.mktemp("clean")
    runs = {}
    for task in ("mmlu_gen", "ceval_gen"):
        proxy.reset_stats()
        result, records = api_run(proxy, out, task)
        runs[task] = {"result": result, "records": records, "requests": proxy.stats["requests"]}
    return {"out": out, **runs}


@pytest.mark.parametrize(("task", "n"), [("mmlu_gen", 57), ("ceval_gen", 52)])
def test_mmlu_and_ceval_complete_end_to_end_with_usage_per_sample(clean: dict[str, Any], task: str, n: int) -> None:
    run = clean[task]
    assert run["result"].returncode == 0, run["result"].stderr[-2000:]
    by_id = samples(run["records"])
    assert len(by_id) == n and all(r["error"] is None for r in by_id.values())
    for record in by_id.values():
        answer = record["responses"][0]
        assert answer["usage"]["prompt_tokens"] > 20 and answer["usage"]["completion_tokens"] >= 1
        assert len(record["score"]["extras"]["probs"]) == 4  # calibration from first-token logprobs
    summary = run["records"][-1]
    assert summary["n_scored"] == n and summary["results"]["overall"]["acc"]["n"] == n
    assert summary["engine"]["prompt_tokens"] == sum(resp["usage"]["prompt_tokens"] for r in by_id.values()
                                                     for resp in r["responses"])
    # two calls per item: the answer and, sent with it, the 1-token request for the choice probabilities
    assert run["requests"] == 2 * n
    assert all(r["responses"][1]["meta"]["source"].startswith("1-token request") for r in by_id.values())


def test_twenty_percent_mixed_faults_change_nothing_and_every_retry_is_logged(
        clean: dict[str, Any], llama_proxy: FaultProxy, tmp_path: Path) -> None:
    llama_proxy.configure(rates=MIXED_20, hang_s=90.0, retry_after_s=0.5, seed=11)
    # a serialised server: 3 in flight keep it busy; 60 s lets only injected hangs time out
    result, records = api_run(llama_proxy, tmp_path, "mmlu_gen", model_args="timeout=60,max_concurrency=3")
    assert result.returncode == 0, result.stderr[-2000:]
    injected = sum(n for k, n in llama_proxy.stats.items() if k.startswith("fault_"))
    assert injected >= 5
    by_id = samples(records)
    assert set(by_id) == set(samples(clean["mmlu_gen"]["records"])) and records[-1]["n_errors"] == 0
    assert verdicts(records) == verdicts(clean["mmlu_gen"]["records"])
    assert records[-1]["results"]["overall"]["acc"] == clean["mmlu_gen"]["records"][-1]["results"]["overall"]["acc"]
    logged = [h for r in by_id.values() for resp in r["responses"] for h in resp.get("meta", {}).get("retries", [])]
    assert len(logged) == records[-1]["engine"]["retries"]
    kinds = Counter(h["kind"] for h in logged)
    for fault, kind in LOGGED_KIND.items():  # every injected fault is a logged retry
        assert kinds[kind] == llama_proxy.stats[f"fault_{fault}"], (fault, kinds, llama_proxy.stats)


def test_cached_rerun_sends_zero_requests(clean: dict[str, Any], llama_proxy: FaultProxy) -> None:
    result, records = api_run(llama_proxy, clean["out"], "mmlu_gen", "--overwrite")
    assert result.returncode == 0, result.stderr[-2000:]
    assert llama_proxy.stats["requests"] == 0
    assert verdicts(records) == verdicts(clean["mmlu_gen"]["records"])


def test_planted_key_appears_in_no_file_and_no_output(llama_proxy: FaultProxy, tmp_path: Path) -> None:
    key = f"sk-test-{secrets.token_hex(16)}"
    # most answers are 401s quoting the key (cheap: they never reach the model); some get through
    llama_proxy.configure(rates={"401": 0.95, "429": 0.03}, retry_after_s=0.2, seed=2)
    args = ["-v", "run", "--model", "openai:smollm2", "--model-args", f"base_url={llama_proxy.url},max_attempts=3",
            "--tasks", "mmlu_gen", "--limit", "1",
            "--output-dir", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")]
    result = evalkit(*args, env={"OPENAI_API_KEY": key}, timeout=900)
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"Bearer {key}" in llama_proxy.authorizations and llama_proxy.stats["fault_401"] > 0
    assert llama_proxy.stats["forwarded"] > 0
    assert_nowhere(key, tmp_path, result.stdout + result.stderr)
