"""The runner hands each chunk's records to the log as soon as the chunk is done: a local
backend's blocking forward passes must not run every chunk before the first is written (a crash
would then lose the whole task's records), and an API backend keeps its window of chunks busy."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from evalkit import runner


def _events(monkeypatch: pytest.MonkeyPatch, window: int, blocking: bool) -> list[str]:
    events: list[str] = []
    running = {"now": 0, "most": 0}

    async def fake_chunk(plan: Any, engines: Any, chunk: Sequence[int]) -> list[int]:
        events.append(f"start {chunk[0]}")
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        if blocking:
            sum(range(10_000))  # CPU work without an await, as a local forward pass
        else:
            await asyncio.sleep(0.001 * (3 - chunk[0] % 3))  # an API: answers come back out of order
        running["now"] -= 1
        return [chunk[0]]

    monkeypatch.setattr(runner, "run_chunk", fake_chunk)
    engines: Any = {"": SimpleNamespace(backend=SimpleNamespace(chunk_size=1, max_concurrent_chunks=window))}

    async def consume() -> None:
        plan: Any = SimpleNamespace(task=SimpleNamespace(interactive=True))
        async for records in runner.process_samples(plan, engines, [0, 1, 2, 3, 4, 5]):  # type: ignore[arg-type]
            events.append(f"got {records[0]}")

    asyncio.run(consume())
    events.append(f"most in flight {running['most']}")
    return events


def test_a_local_backend_writes_each_chunk_before_the_next_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _events(monkeypatch, window=1, blocking=True)
    assert events == [e for i in range(6) for e in (f"start {i}", f"got {i}")] + ["most in flight 1"]


def test_an_api_backend_keeps_its_window_full(monkeypatch: pytest.MonkeyPatch) -> None:
    events = _events(monkeypatch, window=3, blocking=False)
    assert events[-1] == "most in flight 3"
    assert sorted(e for e in events if e.startswith("got")) == [f"got {i}" for i in range(6)]
    # a chunk is written while later chunks are still running, not after all of them
    assert events.index("got 0") < events.index("start 5")


def _plan(generations: int, other: int = 0) -> Any:
    requests = [SimpleNamespace(kind="generate")] * generations + [SimpleNamespace(kind="loglikelihood")] * other
    task = SimpleNamespace(interactive=False, build=lambda sample, shots: SimpleNamespace(requests=requests),
                           select_shots=lambda sample, data, n: ())
    return SimpleNamespace(task=task, data=None, num_fewshot=0)


@pytest.mark.parametrize(("generations", "other", "expected"), [
    (25, 0, runner.MAX_CHUNK_GENERATIONS // 25),  # k continuations per prompt: a chunk is ~256 generations
    (1, 0, 128),  # one generation per sample: the backend's chunk size
    (0, 4, 128),  # log-likelihood tasks keep the backend's chunk size
    (1000, 0, 1),
])
def test_chunks_hold_a_bounded_number_of_generations(generations: int, other: int, expected: int) -> None:
    assert runner.chunk_samples(_plan(generations, other), 128, ["first"]) == expected  # type: ignore[list-item]
