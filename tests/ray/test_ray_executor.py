"""`--executor ray` on a local 2-worker cluster with the mock backend: the same log as one
process, every sample once, the cache filled at the driver, a killed worker's batch redone
elsewhere, a SIGKILLed driver resumed without repeated calls, and a 2 x 2 grid."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends.mock import request_digest
from evalkit.cli import main
from evalkit.executors.config import RayOptions
from evalkit.log.records import requests_from_json
from evalkit.plan import RunConfig
from evalkit.runner import run
from tests.conftest import SHARED_DATA
from tests.helpers import evalkit, kill_evalkit_when, log_records, single_log

TASK = "mmlu_anatomy"


def mock_config(out: Path, model: str, ray: RayOptions | None, limit: int = 10, cache: str = "") -> RunConfig:
    """A run with its own cache, unless `cache` names one to share."""
    return RunConfig(model=model, tasks=(TASK,), limit=limit, output_dir=out, data_dir=SHARED_DATA,
                     cache_dir=out.parent / f"cache-{cache or out.name}", progress=False, ray=ray)


def samples_of(log: Path) -> dict[str, dict[str, Any]]:
    records = [r for r in log_records(log) if r["type"] == "sample"]
    counts = collections.Counter(r["id"] for r in records)
    assert set(counts.values()) == {1}, f"samples recorded more than once: {counts.most_common(3)}"
    return {r["id"]: r for r in records}


def summary_of(log: Path) -> dict[str, Any]:
    return log_records(log)[-1]


def test_ray_run_equals_one_process_and_fills_the_driver_cache(ray_cluster: str, tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    model = f"mock:calls_file={calls}"
    asyncio.run(run(mock_config(tmp_path / "local", model, None)))
    n_local_calls = len(calls.read_text().splitlines())
    calls.unlink()
    ray = RayOptions(address="auto", workers=2, chunk_size=2)
    asyncio.run(run(mock_config(tmp_path / "ray", model, ray, cache="ray")))
    local_log, ray_log = single_log(tmp_path / "local"), single_log(tmp_path / "ray")
    assert ray_log.name == local_log.name, "same run identity, so either executor resumes the other's log"
    local, remote = samples_of(local_log), samples_of(ray_log)
    assert set(local) == set(remote) and len(local) == 10
    for sid, record in local.items():
        assert remote[sid]["responses"] == record["responses"] and remote[sid]["score"] == record["score"]
    assert summary_of(ray_log)["results"] == summary_of(local_log)["results"]
    assert len(calls.read_text().splitlines()) == n_local_calls == 40, "each request answered once, on a worker"
    assert log_records(ray_log)[0]["backend_info"]["executor"]["workers"] == 2

    asyncio.run(run(mock_config(tmp_path / "ray2", model, ray, cache="ray")))  # new log, same cache
    engine = summary_of(single_log(tmp_path / "ray2" / "mock_mock"))["engine"]
    assert engine["sent"] == 0 and engine["cache_hits"] == 40, "the driver stored every answer"
    assert len(calls.read_text().splitlines()) == 40


class WorkerPids(logging.Handler):
    """Collects the pool's "ray worker N: pid P" lines and its warnings."""

    def __init__(self) -> None:
        super().__init__()
        self.pids: list[int] = []
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.warnings.append(record.getMessage())
        elif "pid" in record.getMessage():
            self.pids.append(int(record.getMessage().rsplit(" ", 1)[1]))


def kill_first_worker_when(handler: WorkerPids, calls: Path, n_calls: int) -> threading.Thread:
    def kill() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = len(calls.read_text().splitlines()) if calls.exists() else 0
            if handler.pids and done >= n_calls:
                os.kill(handler.pids[0], signal.SIGKILL)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_killed_worker_s_batch_is_redone_elsewhere(ray_cluster: str, tmp_path: Path) -> None:
    handler = WorkerPids()
    logger = logging.getLogger("evalkit.ray")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    calls = tmp_path / "calls.txt"
    model = f"mock:delay=0.25,calls_file={calls}"
    try:
        killer = kill_first_worker_when(handler, calls, 8)  # two of 16 batches answered
        asyncio.run(run(mock_config(tmp_path / "ray", model, RayOptions(address="auto", workers=2, chunk_size=1),
                                    limit=16)))
        killer.join()
    finally:
        logger.removeHandler(handler)
    assert any("died" in w for w in handler.warnings), "the kill must land mid-run"
    assert len(handler.pids) >= 3, "the dead worker was replaced"
    remote = samples_of(single_log(tmp_path / "ray"))
    assert len(remote) == 16 and not any(r["error"] for r in remote.values())
    asyncio.run(run(mock_config(tmp_path / "local", "mock", None, limit=16)))
    local = samples_of(single_log(tmp_path / "local"))
    assert {k: r["responses"] for k, r in remote.items()} == {k: r["responses"] for k, r in local.items()}
    assert summary_of(single_log(tmp_path / "ray"))["results"] == summary_of(single_log(tmp_path / "local"))["results"]


def driver_args(out: Path, calls: Path, address: str) -> list[str]:
    return ["run", "--model", f"mock:delay=0.2,calls_file={calls}", "--tasks", TASK, "--limit", "24",
            "--output-dir", str(out), "--no-progress", "--executor", "ray", "--ray-address", address,
            "--workers", "2", "--chunk-size", "1"]


def finished(out: Path) -> list[dict[str, Any]]:
    logs = list(out.rglob("*.jsonl"))
    lines = logs[0].read_bytes().split(b"\n")[:-1] if logs else []
    return [r for r in (log_records_line(x) for x in lines) if r["type"] == "sample"]


def log_records_line(line: bytes) -> dict[str, Any]:
    import json

    return dict(json.loads(line))


def test_sigkilled_driver_resumes_without_repeating_calls(ray_cluster: str, tmp_path: Path) -> None:
    out, calls = tmp_path / "runs", tmp_path / "calls.txt"
    env = {**os.environ, "EVALKIT_CACHE_DIR": str(tmp_path / "cache"), "EVALKIT_DATA_DIR": str(SHARED_DATA)}
    kill_evalkit_when(driver_args(out, calls, ray_cluster), lambda: len(finished(out)) >= 4, env, timeout=120)
    before_kill = finished(out)
    assert 4 <= len(before_kill) < 24, "the kill must land mid-run"

    resumed = evalkit(*driver_args(out, calls, ray_cluster), env=env)
    assert resumed.returncode == 0, resumed.stderr
    records = samples_of(single_log(out))
    assert len(records) == 24
    calls_after = collections.Counter(calls.read_text().splitlines())
    for sample in before_kill:
        for request in requests_from_json(sample):
            assert calls_after[request_digest(request)] == 1, f"{sample['id']} was sent again"


def test_grid_of_two_models_and_two_tasks_on_ray(ray_cluster: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    code = main(["run", "--model", "mock:seed=1", "--model", "mock:seed=2", "--tasks", "mmlu_anatomy,mmlu_astronomy", "--limit", "4", "--output-dir", str(out), "--no-progress",
                 "--cache-dir", str(tmp_path / "cache"), "--data-dir", str(SHARED_DATA),
                 "--executor", "ray", "--ray-address", ray_cluster, "--chunk-size", "2"])
    assert code == 0
    logs = sorted(out.rglob("*.jsonl"))
    assert len(logs) == 4, logs
    cells = {(log_records(p)[0]["model"]["spec"], log_records(p)[0]["task"]["name"]) for p in logs}
    assert cells == {(m, t) for m in ("mock:seed=1", "mock:seed=2") for t in ("mmlu_anatomy", "mmlu_astronomy")}
    for log in logs:
        assert summary_of(log)["complete"] and log_records(log)[0]["backend_info"]["executor"]["kind"] == "ray"
    capsys.readouterr()
    assert main(["leaderboard", str(out)]) == 0
    board = capsys.readouterr().out
    assert "mock:seed=1" in board and "mock:seed=2" in board


def test_sweep_file_grid_on_ray_resumes_every_cell(ray_cluster: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    calls, out = tmp_path / "calls.txt", tmp_path / "runs"
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'''models = ["mock:seed=1,calls_file={calls}", "mock:seed=2,calls_file={calls}"]
tasks = ["mmlu"]
limit = 2
output_dir = "{out}"
task_params = [{{ subjects = "anatomy" }}, {{ subjects = "astronomy" }}]
[executor]
kind = "ray"
address = "{ray_cluster}"
workers = 1
chunk_size = 1
''')
    args = ["sweep", str(sweep), "--data-dir", str(SHARED_DATA), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "[4/4]" in printed
    logs = sorted(out.rglob("*.jsonl"))
    assert len(logs) == 4 and all(summary_of(p)["complete"] for p in logs)
    subjects = {(log_records(p)[0]["model"]["options"]["seed"], next(iter(samples_of(p))).split("/")[0])
                for p in logs}
    assert subjects == {(s, t) for s in ("1", "2") for t in ("anatomy", "astronomy")}
    n_calls = len(calls.read_text().splitlines())
    assert n_calls == 4 * 2 * 4
    assert main(args) == 0, "a second run resumes every cell"
    assert len(calls.read_text().splitlines()) == n_calls, "and sends nothing"


def test_sweep_file_errors_name_the_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('models = ["mock"]\ntasks = ["mmlu"]\nlimt = 2\n')
    assert main(["sweep", str(sweep)]) == 2
    assert f"{sweep}: unknown key(s) limt" in capsys.readouterr().err
    sweep.write_text('models = ["nope:x"]\ntasks = ["mmlu"]\n')
    assert main(["sweep", str(sweep)]) == 2
    assert "nope" in capsys.readouterr().err
