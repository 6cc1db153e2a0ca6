"""The pipeline: load → requests → backend → extract/score → aggregate → write.

`run` reads as the spec: everything that can fail on bad input (task names, model spec,
data files, existing logs) fails before the model is loaded; then each task runs through
`run_one`, which resumes from its log and appends samples as they finish.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evalkit import records, registry
from evalkit.backends.base import Backend
from evalkit.cache import ResponseCache, default_cache_dir
from evalkit.engine import Engine
from evalkit.errors import ConfigError, RunLogError
from evalkit.models import ModelSpec, create_backend, parse_model_spec
from evalkit.runlog import LogContent, LogWriter, RunLog, read_log, repair_log
from evalkit.task import DataSource, Task, TaskData, TaskResults, get_task
from evalkit.types import GenerateRequest, Request, Sample, stable_hash


@dataclass(frozen=True)
class RunConfig:
    model: str
    tasks: tuple[str, ...]
    model_args: Mapping[str, str] = field(default_factory=dict)
    limit: int | None = None
    num_fewshot: int | None = None
    seed: int = 0
    output_dir: Path = Path("runs")
    data_dir: Path | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    overwrite: bool = False
    repair: bool = False
    progress: bool = True
    allow_hub: bool = True


@dataclass(frozen=True)
class TaskPlan:
    task: Task
    data: TaskData
    samples: tuple[Sample, ...]
    num_fewshot: int
    seed: int
    identity: dict[str, Any]
    log_path: Path
    existing: RunLog | None


@dataclass(frozen=True)
class TaskOutcome:
    task: str
    log_path: Path
    results: TaskResults
    n_samples: int
    n_errors: int
    seconds: float


async def run(config: RunConfig) -> list[TaskOutcome]:
    spec = parse_model_spec(config.model, config.model_args)
    tasks = [get_task(name) for name in config.tasks]
    source = DataSource(config.data_dir, config.allow_hub)
    plans = [plan_task(task, source, spec, config) for task in tasks]
    backend = create_backend(spec)
    cache: ResponseCache | None = None
    try:
        check_capabilities(backend, tasks, spec)
        for task in tasks:
            task.configure_for(backend.capabilities)
        cache = open_cache(config)
        engine = Engine(backend, cache)
        return [await run_one(plan, engine, spec, config) for plan in plans]
    finally:
        try:
            if cache is not None:
                cache.close()  # waits for the writer thread: every answer is stored
        finally:
            await backend.aclose()


def plan_task(task: Task, source: DataSource, spec: ModelSpec, config: RunConfig) -> TaskPlan:
    """Load data, pick samples and find any log to resume: all before the model loads."""
    data, samples, num_fewshot = load_and_select(task, source, config)
    identity = {
        "model": spec.raw,
        "model_options": dict(spec.options),
        "task": task.config(),
        "limit": config.limit,
        "num_fewshot": num_fewshot,
        "seed": config.seed,
    }
    log_path = config.output_dir / spec.slug / f"{task.name}-{stable_hash(identity, 10)}.jsonl"
    return TaskPlan(task, data, samples, num_fewshot, config.seed, identity, log_path, existing_log(log_path, config))


def load_and_select(task: Task, source: DataSource, config: RunConfig) -> tuple[TaskData, tuple[Sample, ...], int]:
    """The task's data, the samples this run evaluates, and its checked few-shot count."""
    data = task.load(source)
    if not data.samples:
        raise ConfigError(f"task {task.name!r} loaded no samples from {data.origin or 'its source'}")
    samples = select_samples(task, data.samples, config.limit)
    num_fewshot = task.default_num_fewshot if config.num_fewshot is None else config.num_fewshot
    if num_fewshot < 0:
        raise ConfigError(f"--num-fewshot must be >= 0, got {num_fewshot}")
    first_of_subtask = {s.subtask: s for s in reversed(samples)}
    for sample in first_of_subtask.values():
        task.select_shots(sample, data, num_fewshot)  # fails now, not mid-run
    return data, samples, num_fewshot


def select_samples(task: Task, samples: Sequence[Sample], limit: int | None) -> tuple[Sample, ...]:
    if limit is None:
        return tuple(samples)
    if limit <= 0:
        raise ConfigError(f"--limit must be a positive number, got {limit}")
    if not task.limit_per_subtask:
        return tuple(samples[:limit])
    taken: dict[str, int] = {}
    chosen = []
    for s in samples:
        if taken.get(s.subtask, 0) < limit:
            taken[s.subtask] = taken.get(s.subtask, 0) + 1
            chosen.append(s)
    return tuple(chosen)


def existing_log(path: Path, config: RunConfig) -> RunLog | None:
    if not path.exists() or config.overwrite:
        return None  # an overwritten log is removed in run_one, once the model has loaded
    if config.repair:
        repair_log(path)
    return read_log(path)


def check_capabilities(backend: Backend, tasks: Sequence[Task], spec: ModelSpec) -> None:
    for task in tasks:
        missing = task.requires - backend.capabilities
        if missing:
            raise ConfigError(
                f"task {task.name!r} needs {', '.join(sorted(missing))}, which model {spec.raw!r} "
                f"does not support (it supports: {', '.join(sorted(backend.capabilities)) or 'nothing'})"
            )


def open_cache(config: RunConfig) -> ResponseCache | None:
    if not config.use_cache:
        return None
    return ResponseCache((config.cache_dir or default_cache_dir()) / "responses.sqlite")


async def run_one(plan: TaskPlan, engine: Engine, spec: ModelSpec, config: RunConfig) -> TaskOutcome:
    started = time.perf_counter()
    header = records.header_record(plan, spec, engine)
    samples_by_id = check_resume(plan, header)
    pending = [s for s in plan.samples if s.id not in samples_by_id or samples_by_id[s.id].get("error")]
    if plan.existing is None:
        plan.log_path.unlink(missing_ok=True)  # --overwrite: nothing failed before this point
    with LogWriter(plan.log_path) as writer, _progress(plan, config) as bar:
        if plan.existing is None:
            writer.append(header)
        async for finished in process_samples(plan, engine, pending):
            writer.append_many(finished)
            samples_by_id.update((r["id"], r) for r in finished)
            bar.update(len(finished))
        chosen = [samples_by_id[s.id] for s in plan.samples]
        results = plan.task.aggregate([records.scored_record(r) for r in chosen], seed=config.seed)
        seconds = time.perf_counter() - started
        n_errors = sum(1 for r in chosen if r.get("error"))
        summary = records.summary_record(results, chosen, seconds, len(pending), engine.stats)
        writer.append(summary)
    old_offsets = plan.existing.offsets if plan.existing else {}
    content = LogContent(plan.existing.header if plan.existing else header, summary, samples_by_id,
                         {sid: writer.sample_offsets.get(sid, old_offsets.get(sid, -1)) for sid in samples_by_id})
    registry.notify_log_finished(plan.log_path, content)
    return TaskOutcome(plan.task.name, plan.log_path, results, len(chosen), n_errors, seconds)


def check_resume(plan: TaskPlan, header: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The finished sample records of a log being resumed, after checking it is the same run."""
    if plan.existing is None:
        return {}
    old = plan.existing.header
    for key in ("identity", "model_fingerprint"):
        if old.get(key) != header.get(key):
            raise RunLogError(
                f"{plan.log_path}: was written by a run with a different {key.replace('_', ' ')}; "
                "use --overwrite to replace it or --output-dir to keep both"
            )
    wanted = {s.id for s in plan.samples}
    return {sid: rec for sid, rec in plan.existing.samples.items() if sid in wanted}


async def process_samples(
    plan: TaskPlan, engine: Engine, pending: Sequence[Sample]
) -> AsyncIterator[list[dict[str, Any]]]:
    """Yield finished sample records chunk by chunk, several chunks in flight for APIs."""
    size = max(1, engine.backend.chunk_size)
    window = asyncio.Semaphore(max(1, engine.backend.max_concurrent_chunks))

    async def one(chunk: Sequence[Sample]) -> list[dict[str, Any]]:
        async with window:
            return await run_chunk(plan, engine, chunk)

    jobs = [asyncio.ensure_future(one(pending[i : i + size])) for i in range(0, len(pending), size)]
    try:
        for job in asyncio.as_completed(jobs):
            yield await job
    finally:
        for job in jobs:
            job.cancel()


async def run_chunk(plan: TaskPlan, engine: Engine, chunk: Sequence[Sample]) -> list[dict[str, Any]]:
    """Requests of the whole chunk go to the backend together (local backends batch them);
    interactive tasks run sample by sample. Scoring runs concurrently (code execution)."""
    task = plan.task
    shots = [task.select_shots(s, plan.data, plan.num_fewshot) for s in chunk]
    if task.interactive:
        solved = await asyncio.gather(
            *(task.solve(s, sh, _tagged_execute(engine, s, plan.seed)) for s, sh in zip(chunk, shots, strict=True))
        )
        per_sample = [reqs for reqs, _ in solved]
        answers_per_sample = [answers for _, answers in solved]
        prompts = [task.render_prompt(s, sh) for s, sh in zip(chunk, shots, strict=True)]
    else:
        built = [task.requests_and_prompt(s, sh) for s, sh in zip(chunk, shots, strict=True)]
        prompts = [prompt for _, prompt in built]
        per_sample = [tag_requests(reqs, s, plan.seed) for (reqs, _), s in zip(built, chunk, strict=True)]
        responses = await engine.execute([req for reqs in per_sample for req in reqs])
        answers_per_sample, pos = [], 0
        for reqs in per_sample:
            answers_per_sample.append(responses[pos : pos + len(reqs)])
            pos += len(reqs)
    if type(task).ascore is Task.ascore:  # plain scoring: no coroutine per sample
        verdicts = [score_sample_now(task, s, a) for s, a in zip(chunk, answers_per_sample, strict=True)]
    else:  # code execution, judges: concurrently
        verdicts = await asyncio.gather(*(score_sample(task, s, a) for s, a in zip(chunk, answers_per_sample, strict=True)))
    return [
        records.sample_record(s, prompt, sh, reqs, answers, score, error)
        for s, prompt, sh, reqs, answers, (score, error)
        in zip(chunk, prompts, shots, per_sample, answers_per_sample, verdicts, strict=True)
    ]


def _tagged_execute(engine: Engine, sample: Sample, seed: int) -> Any:
    async def execute(requests: Sequence[Request]) -> list[Any]:
        return await engine.execute(tag_requests(requests, sample, seed))

    return execute


def tag_requests(requests: Sequence[Request], sample: Sample, seed: int) -> tuple[Request, ...]:
    """Generate requests carry their sample id (cache key, replay lookup) and the run's seed
    (backends derive each sample's sampling seed from it and `repeat`)."""
    return tuple(
        dataclasses.replace(r, sample_id=r.sample_id or sample.id, params=dataclasses.replace(r.params, seed=seed))
        if isinstance(r, GenerateRequest) else r
        for r in requests
    )


async def score_sample(task: Task, sample: Sample, answers: Sequence[Any]) -> tuple[Any, str | None]:
    if type(task).ascore is Task.ascore or any(a.error for a in answers):
        return score_sample_now(task, sample, answers)
    try:
        return await task.ascore(sample, answers), None
    except Exception as exc:  # a response the scorer cannot read is an error, not a wrong answer
        return None, f"scoring failed: {type(exc).__name__}: {exc}"


def score_sample_now(task: Task, sample: Sample, answers: Sequence[Any]) -> tuple[Any, str | None]:
    """(score, error) with the task's synchronous `score`; failed requests are errors."""
    failed = [a.error for a in answers if a.error]
    if failed:
        return None, f"request failed: {failed[0]}"
    try:
        return task.score(sample, answers), None
    except Exception as exc:  # a response the scorer cannot read is an error, not a wrong answer
        return None, f"scoring failed: {type(exc).__name__}: {exc}"


def _progress(plan: TaskPlan, config: RunConfig) -> tqdm[Any]:
    done = len(plan.samples) - sum(
        1 for s in plan.samples
        if plan.existing is None or s.id not in plan.existing.finished_ids
    )
    return tqdm(total=len(plan.samples), initial=done, desc=plan.task.name, unit="sample",
                disable=not config.progress, leave=False, dynamic_ncols=True, mininterval=0.5)
