"""The pipeline: load → requests → backend → extract/score → aggregate → write.

`run` reads as the spec: everything that can fail on bad input (task names and parameters,
model and role specs, capabilities, data files, existing logs) fails before any model is
loaded; then each task runs through `run_one`, which resumes from its log and appends
samples as they finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evalkit import registry
from evalkit.backends.base import Backend
from evalkit.backends.facts import model_facts
from evalkit.cache import ResponseCache, default_cache_dir
from evalkit.efficiency import EnergyMeter, efficiency_panel
from evalkit.engine import Engine
from evalkit.errors import ConfigError, RunLogError
from evalkit.executors import create_model_backend
from evalkit.log.build import header_record, summary_record
from evalkit.log.io import LogContent, LogWriter, RunLog, read_log, repair_log
from evalkit.log.records import HeaderRecord, SampleRecord
from evalkit.models import ModelSpec, create_backend, parse_model_spec
from evalkit.params import ModelFacts, check_global_keys, for_task
from evalkit.plan import RunConfig, TaskOutcome, TaskPlan
from evalkit.task import DataSource, Execute, ScoreContext, Task, TaskData, get_task, task_entry
from evalkit.types import GENERATE, Request, Response, Sample, Score, stable_hash, tag_requests

__all__ = ["RunConfig", "TaskOutcome", "TaskPlan", "build_tasks", "load_and_select", "run"]


@contextlib.contextmanager
def fewer_gc_pauses() -> Iterator[None]:
    """A run keeps tens of thousands of small records alive; with the default thresholds the
    collector re-traverses them every few hundred allocations (~25% of a cached MMLU run's
    time). Collect less often while the run holds them; the old thresholds come back after."""
    old = gc.get_threshold()
    gc.set_threshold(50_000, 20, 10)
    try:
        yield
    finally:
        gc.set_threshold(*old)


async def run(config: RunConfig) -> list[TaskOutcome]:
    with fewer_gc_pauses():
        return await _run(config)


async def _run(config: RunConfig) -> list[TaskOutcome]:
    if config.ray is not None:
        config.ray.check()  # Ray installed, options sane: before anything loads
    spec = parse_model_spec(config.model, config.model_args)
    role_specs = parse_roles(config)
    facts = model_facts(spec)
    tasks = build_tasks(config, facts)
    role_specs = with_default_roles(tasks, role_specs, spec)
    check_roles(tasks, spec, facts, role_specs)
    check_output_dir(config.output_dir)
    source = DataSource(config.data_dir, config.allow_hub)
    plans = [plan_task(task, source, spec, role_specs, config, facts) for task in tasks]
    backends: dict[str, Backend] = {}
    cache: ResponseCache | None = None
    try:
        backends[""] = backend = create_model_backend(spec, config.ray)
        check_capabilities(backend, tasks, spec)
        for name in sorted({r for p in plans for r in p.roles}):
            # a role the model under test plays (by default) shares its loaded backend
            backends[name] = backend if role_specs[name] is spec else create_backend(role_specs[name])
            check_role_capabilities(name, backends[name], tasks, role_specs[name])
        plans = [dataclasses.replace(p, task=p.task.with_capabilities(backend.capabilities)) for p in plans]
        cache = open_cache(config)
        engines = {name: Engine(b, cache, namespace=name) for name, b in backends.items()}
        return [await run_one(plan, engines, spec, role_specs, config) for plan in plans]
    finally:
        try:
            if cache is not None:
                cache.close()  # waits for the writer thread: every answer is stored
        finally:
            for b in {id(b): b for b in backends.values()}.values():  # a shared backend closes once
                await b.aclose()


def check_output_dir(path: Path) -> None:
    """--output-dir must be a folder that exists or can be made, and is writable: checked
    before anything loads, and without writing (a run that fails later leaves nothing)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--output-dir {path}: exists and is not a directory")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"--output-dir {path}: cannot create it ({ancestor} is not a directory)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"--output-dir {path}: cannot write in {ancestor}")


def parse_roles(config: RunConfig) -> dict[str, ModelSpec]:
    out = {}
    for name, role in config.roles.items():
        try:
            out[name] = parse_model_spec(role.spec, role.args)
        except ConfigError as exc:
            raise ConfigError(f"--role {name}: {exc}") from None
    return out


def with_default_roles(tasks: Sequence[Task], roles: Mapping[str, ModelSpec], spec: ModelSpec) -> dict[str, ModelSpec]:
    """The given roles, plus the model under test in each role a task lets it play when not given."""
    defaults = {role: spec for task in tasks for role in task.roles_default_to_model if role not in roles}
    return {**roles, **defaults}


def build_tasks(config: RunConfig, facts: ModelFacts) -> list[Task]:
    """The tasks with their parameters (`-T`), checked: unknown keys and bad values fail here."""
    accepted = {name: [p.name for p in task_entry(name).params] for name in config.tasks}
    check_global_keys(config.task_params, accepted)
    single = len(config.tasks) == 1
    return [get_task(name, for_task(name, accepted[name], config.task_params, only_task=single), facts)
            for name in config.tasks]


def check_roles(tasks: Sequence[Task], spec: ModelSpec, facts: ModelFacts, roles: Mapping[str, ModelSpec]) -> None:
    """Every role a task needs is given and declares what the task asks of it (no model loads)."""
    for task in tasks:
        if facts.capabilities is not None:
            _check_declared(task, "model", spec, task.requires, facts.capabilities)
        for role, needs in task.roles.items():
            if role not in roles:
                raise ConfigError(f"task {task.name!r} needs a {role!r} model: give it with --role {role}=SPEC")
            declared = model_facts(roles[role]).capabilities
            if declared is not None:
                _check_declared(task, f"role {role!r}", roles[role], needs, declared)


def _check_declared(task: Task, who: str, spec: ModelSpec, needs: frozenset[str], has: frozenset[str]) -> None:
    missing = needs - has
    if missing:
        whose = "model" if who == "model" else f"{who} model"
        raise ConfigError(f"task {task.name!r} needs {', '.join(sorted(missing))}, which {whose} "
                          f"{spec.raw!r} does not support (it supports: {', '.join(sorted(has)) or 'nothing'})")


def plan_task(task: Task, source: DataSource, spec: ModelSpec, roles: Mapping[str, ModelSpec],
              config: RunConfig, facts: ModelFacts) -> TaskPlan:
    """Load data, pick samples and find any log to resume: all before the model loads."""
    data, samples, num_fewshot = load_and_select(task, source, config)
    identity: dict[str, Any] = {
        "model": spec.raw,
        "model_options": dict(spec.options),
        "task": task.config(),
        "limit": config.limit,
        "num_fewshot": num_fewshot,
        "seed": config.seed,
    }
    used = tuple(sorted(task.roles))
    if used:
        identity["roles"] = {r: {"spec": roles[r].raw, "options": dict(roles[r].options)} for r in used}
    notes = {"chat": facts.chat_reason} if task.parameters.get("chat") is not None else {}
    log_path = config.output_dir / spec.slug / f"{task.name}-{stable_hash(identity, 10)}.jsonl"
    existing = existing_log(log_path, config)
    return TaskPlan(task, data, samples, num_fewshot, config.seed, identity, log_path, existing, used, notes)


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
    """The first `limit` samples (per subtask where the task says so). Derived samples count
    by their source (`join_key`): `--limit 5` on a circular task is 5 questions, every rotation."""
    if limit is None:
        return tuple(samples)
    if limit <= 0:
        raise ConfigError(f"--limit must be a positive number, got {limit}")
    taken: dict[str, set[str]] = {}
    chosen = []
    for s in samples:
        seen = taken.setdefault(s.subtask if task.limit_per_subtask else "", set())
        if s.join_key in seen or len(seen) < limit:
            seen.add(s.join_key)
            chosen.append(s)
    return tuple(chosen)


def existing_log(path: Any, config: RunConfig) -> RunLog | None:
    if not path.exists() or config.overwrite:
        return None  # an overwritten log is removed in run_one, once the model has loaded
    if config.repair:
        repair_log(path)
    return read_log(path)


def check_capabilities(backend: Backend, tasks: Sequence[Task], spec: ModelSpec) -> None:
    for task in tasks:
        _check_declared(task, "model", spec, task.requires, backend.capabilities)


def check_role_capabilities(role: str, backend: Backend, tasks: Sequence[Task], spec: ModelSpec) -> None:
    for task in tasks:
        if role in task.roles:
            _check_declared(task, f"role {role!r}", spec, task.roles[role], backend.capabilities)


def open_cache(config: RunConfig) -> ResponseCache | None:
    if not config.use_cache:
        return None
    return ResponseCache((config.cache_dir or default_cache_dir()) / "responses.sqlite")


async def run_one(plan: TaskPlan, engines: Mapping[str, Engine], spec: ModelSpec,
                  role_specs: Mapping[str, ModelSpec], config: RunConfig) -> TaskOutcome:
    started = time.perf_counter()
    for each in engines.values():  # one task's summary counts that task's requests only
        each.stats = each.fresh_stats()
    meter = EnergyMeter()
    engine = engines[""]
    roles = {r: (role_specs[r], engines[r]) for r in plan.roles}
    header = header_record(plan, spec, engine, roles)
    finished = check_resume(plan, header)
    pending = [s for s in plan.samples if s.id not in finished or finished[s.id].error]
    written: dict[str, dict[str, Any]] = {}
    if plan.existing is None:
        plan.log_path.unlink(missing_ok=True)  # --overwrite: nothing failed before this point
    with LogWriter(plan.log_path) as writer, _progress(plan, config) as bar:
        if plan.existing is None:
            writer.append(header.to_json())
        async for chunk in process_samples(plan, engines, pending):
            lines = [r.to_json() for r in chunk]
            writer.append_many(lines)
            for record, line in zip(chunk, lines, strict=True):
                finished[record.id] = record
                written[record.id] = line
            bar.update(len(chunk))
        chosen = [finished[s.id] for s in plan.samples]
        results = plan.task.aggregate(chosen, seed=config.seed)
        seconds = time.perf_counter() - started
        used = [engine.stats, *(e.stats for r, (_, e) in roles.items() if e is not engine)]
        panel = efficiency_panel(seconds, len(pending), used, meter.panel(seconds, config.energy))
        summary = summary_record(results, chosen, seconds, len(pending), engine.stats,
                                 {r: e.stats for r, (_, e) in roles.items()}, efficiency=panel)
        summary_json = summary.to_json()
        writer.append(summary_json)
    notify_finished(plan, header, summary_json, finished, written, writer.sample_offsets)
    return TaskOutcome(plan.task.name, plan.log_path, results, len(chosen), summary.n_errors, seconds)


def notify_finished(plan: TaskPlan, header: HeaderRecord, summary: Mapping[str, Any],
                    finished: Mapping[str, SampleRecord], written: Mapping[str, Mapping[str, Any]],
                    new_offsets: Mapping[str, int]) -> None:
    """Hand the finished log's content to plugins (the reports index) without re-reading it."""
    old_offsets = plan.existing.offsets if plan.existing else {}
    samples = {sid: written.get(sid) or rec.to_json() for sid, rec in finished.items()}
    head = plan.existing.header if plan.existing else header
    content = LogContent(head.to_json(), summary, samples,
                         {sid: new_offsets.get(sid, old_offsets.get(sid, -1)) for sid in finished})
    registry.notify_log_finished(plan.log_path, content)


def check_resume(plan: TaskPlan, header: HeaderRecord) -> dict[str, SampleRecord]:
    """The finished sample records of a log being resumed, after checking it is the same run."""
    if plan.existing is None:
        return {}
    old = plan.existing.header
    checks = (("identity", old.identity, header.identity),
              ("model fingerprint", old.model_fingerprint, header.model_fingerprint),
              ("role fingerprints", _role_fingerprints(old), _role_fingerprints(header)))
    for what, was, now in checks:
        if was != now:
            raise RunLogError(
                f"{plan.log_path}: was written by a run with a different {what}; "
                "use --overwrite to replace it or --output-dir to keep both"
            )
    wanted = {s.id for s in plan.samples}
    return {sid: rec for sid, rec in plan.existing.samples.items() if sid in wanted}


def _role_fingerprints(header: HeaderRecord) -> dict[str, Any]:
    return {name: role.get("fingerprint") for name, role in header.roles.items()}


async def process_samples(
    plan: TaskPlan, engines: Mapping[str, Engine], pending: Sequence[Sample]
) -> AsyncIterator[list[SampleRecord]]:
    """Yield finished sample records chunk by chunk, several chunks in flight for APIs.

    A chunk starts only when there is room in the window, so a local backend (window 1, whose
    forward passes block the event loop) hands each chunk's records to the log before the next
    chunk runs: a crash loses at most the chunk in progress."""
    backend = engines[""].backend
    size, width = chunk_samples(plan, backend.chunk_size, pending), max(1, backend.max_concurrent_chunks)
    chunks = [pending[i : i + size] for i in range(0, len(pending), size)]
    in_flight: set[asyncio.Future[list[SampleRecord]]] = set()
    started = 0
    try:
        while started < len(chunks) or in_flight:
            while started < len(chunks) and len(in_flight) < width:
                in_flight.add(asyncio.ensure_future(run_chunk(plan, engines, chunks[started])))
                started += 1
            done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for job in done:
                yield job.result()
    finally:
        for job in in_flight:
            job.cancel()


#: at most this many generations per chunk: a chunk is what a crash can lose
MAX_CHUNK_GENERATIONS = 256


def chunk_samples(plan: TaskPlan, backend_chunk: int, pending: Sequence[Sample]) -> int:
    """Samples per chunk: the backend's chunk size, fewer when each sample asks for many
    generations (k continuations per prompt), so records reach the log every few minutes."""
    size = max(1, backend_chunk)
    if not pending or plan.task.interactive:
        return size
    first = pending[0]
    built = plan.task.build(first, plan.task.select_shots(first, plan.data, plan.num_fewshot))
    generations = sum(1 for r in built.requests if r.kind == GENERATE)
    return max(1, min(size, MAX_CHUNK_GENERATIONS // generations)) if generations > 1 else size


async def run_chunk(plan: TaskPlan, engines: Mapping[str, Engine], chunk: Sequence[Sample]) -> list[SampleRecord]:
    """Requests of the whole chunk go to the backend together (local backends batch them);
    interactive tasks run sample by sample. Scoring runs concurrently (code execution, judges)."""
    task, engine = plan.task, engines[""]
    shots = [task.select_shots(s, plan.data, plan.num_fewshot) for s in chunk]
    if task.interactive:
        solved = await asyncio.gather(*(task.solve(s, sh, tagged_execute(engine, s, plan.seed))
                                        for s, sh in zip(chunk, shots, strict=True)))
        prompts = [x.prompt for x in solved]
        per_sample = [x.requests for x in solved]
        answers_per_sample = [x.responses for x in solved]
    else:
        built = [task.build(s, sh) for s, sh in zip(chunk, shots, strict=True)]
        prompts = [b.prompt for b in built]
        per_sample = [tag_requests(b.requests, s.id, plan.seed) for b, s in zip(built, chunk, strict=True)]
        responses = await engine.execute([req for reqs in per_sample for req in reqs])
        answers_per_sample, pos = [], 0
        for reqs in per_sample:
            answers_per_sample.append(tuple(responses[pos : pos + len(reqs)]))
            pos += len(reqs)
    if type(task).ascore is Task.ascore:  # plain scoring: no coroutine per sample
        verdicts = [score_sample_now(task, s, a) for s, a in zip(chunk, answers_per_sample, strict=True)]
    else:  # code execution, judges: concurrently
        verdicts = await asyncio.gather(*(score_sample(task, s, a, score_context(plan, engines, s))
                                          for s, a in zip(chunk, answers_per_sample, strict=True)))
    return [
        SampleRecord.of(s, prompt, sh, reqs, answers, score, error)
        for s, prompt, sh, reqs, answers, (score, error)
        in zip(chunk, prompts, shots, per_sample, answers_per_sample, verdicts, strict=True)
    ]


def score_context(plan: TaskPlan, engines: Mapping[str, Engine], sample: Sample) -> ScoreContext:
    return ScoreContext(sample.id, plan.seed, {r: tagged_execute(engines[r], sample, plan.seed) for r in plan.roles})


def tagged_execute(engine: Engine, sample: Sample, seed: int) -> Execute:
    async def execute(requests: Sequence[Request]) -> list[Response]:
        return await engine.execute(tag_requests(requests, sample.id, seed))

    return execute


async def score_sample(task: Task, sample: Sample, answers: Sequence[Response],
                       ctx: ScoreContext) -> tuple[Score | None, str | None]:
    if type(task).ascore is Task.ascore or any(a.error for a in answers):
        return score_sample_now(task, sample, answers)
    try:
        return await task.ascore(sample, answers, ctx), None
    except Exception as exc:  # a response the scorer cannot read is an error, not a wrong answer
        return None, f"scoring failed: {type(exc).__name__}: {exc}"


def score_sample_now(task: Task, sample: Sample, answers: Sequence[Response]) -> tuple[Score | None, str | None]:
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
