"""Log-to-log stages: read one or more run logs joined on sample id or source id, and write a
derived log with the same guarantees as `evalkit run`: records appended as they finish, a
rerun resumes (finished keys are never processed again), role calls go through an Engine and
its response cache, and the output is a run log every reader understands.

The join rule (docs/architecture.md, "Derived samples"): an input joined on `id` keys each
record by its sample id; one joined on `source` keys it by `source_id or id`, so derived
samples (perturbations, rotations) meet the sample they came from. The stage sees, per key,
the records every input has under it (several for a source-joined input with several
derivations); keys missing from an input are skipped and counted in the header.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from evalkit import registry
from evalkit.backends.facts import model_facts
from evalkit.cache import ResponseCache, default_cache_dir
from evalkit.efficiency import EnergyMeter, EnergySettings, efficiency_panel
from evalkit.engine import Engine
from evalkit.errors import ConfigError, RunLogError
from evalkit.log.build import host_info, now, package_versions, spec_json, summary_record
from evalkit.log.io import LogContent, LogWriter, RunLog, read_log
from evalkit.log.records import HeaderRecord, SampleRecord, SummaryRecord
from evalkit.models import ModelSpec, create_backend
from evalkit.results import TaskResults
from evalkit.task import ScoreContext
from evalkit.types import Request, Response, stable_hash, tag_requests

Join = Literal["id", "source"]


@dataclass(frozen=True)
class StageInput:
    label: str
    log: RunLog
    join: Join = "id"

    def keyed(self) -> dict[str, tuple[SampleRecord, ...]]:
        grouped: dict[str, list[SampleRecord]] = defaultdict(list)
        for record in self.log.samples.values():
            grouped[record.join_key if self.join == "source" else record.id].append(record)
        return {k: tuple(v) for k, v in grouped.items()}

    def describe(self) -> dict[str, Any]:
        return {"label": self.label, "path": str(self.log.path), "identity": self.log.header.identity,
                "join": self.join, "task": self.log.header.task_name, "model": self.log.header.model_spec}


@dataclass(frozen=True)
class StageOptions:
    roles: Mapping[str, ModelSpec] = field(default_factory=dict)
    cache_dir: Path | None = None
    use_cache: bool = True
    seed: int = 0
    progress: bool = True
    #: keys processed concurrently (role calls to an API overlap)
    concurrency: int = 8


class Stage(ABC):
    """One derived-log computation. Subclasses say how a joined key becomes a record."""

    name: str = ""
    version: str = "1"
    headline_metric: str = ""
    #: model roles the stage calls, with the capabilities each needs
    roles: Mapping[str, frozenset[str]] = {}

    def config(self) -> dict[str, Any]:
        """Everything about the stage that changes its output (part of the identity)."""
        return {"name": self.name, "version": self.version, "stage": type(self).__name__}

    @abstractmethod
    async def process(self, key: str, joined: Mapping[str, tuple[SampleRecord, ...]],
                      ctx: ScoreContext) -> SampleRecord:
        """The output record for one key (its id should be `key`)."""

    @abstractmethod
    def aggregate(self, records: Sequence[SampleRecord], seed: int) -> TaskResults: ...

    def units(self, keys: Sequence[str], joined: Mapping[str, Mapping[str, tuple[SampleRecord, ...]]]
              ) -> tuple[list[str], dict[str, Mapping[str, tuple[SampleRecord, ...]]]]:
        """The keys the stage processes, each with its joined records. By default one per joined
        key; a stage that makes several records per key (a judge: each turn and answer order)
        splits them here, so each is appended, resumed and cached on its own."""
        return list(keys), dict(joined)

    def retry(self, record: SampleRecord) -> bool:
        """Whether a rerun processes this finished record with an error again (by default every
        error is retried; a stage may keep errors that are final, e.g. an unreadable verdict)."""
        return True

    def header(self, inputs: Sequence[StageInput], identity: str,
               roles: Mapping[str, tuple[ModelSpec, Engine]]) -> HeaderRecord:
        labels = "+".join(i.label for i in inputs)
        return HeaderRecord(
            task=self.config(),
            model={"spec": f"stage:{self.name}", "backend": "stage", "target": labels, "options": {}},
            identity=identity,
            roles={r: {**spec_json(s), "fingerprint": e.fingerprint_for(self.roles.get(r, frozenset()))}
                   for r, (s, e) in roles.items()},
            headline_metric=self.headline_metric,
            packages=package_versions(),
            host=host_info(),
            created_at=now(),
            kind="stage",
            inputs=tuple(i.describe() for i in inputs),
        )

    def summary(self, records: Sequence[SampleRecord], seconds: float, processed: int,
                engines: Mapping[str, Engine], seed: int, energy: Mapping[str, Any] | None = None) -> SummaryRecord:
        from evalkit.engine import EngineStats

        results = self.aggregate(records, seed)
        panel = efficiency_panel(seconds, processed, [e.stats for e in engines.values()], energy)
        return summary_record(results, records, seconds, processed, EngineStats(),
                              {r: e.stats for r, e in engines.items()}, efficiency=panel)


def stage_identity(stage: Stage, inputs: Sequence[StageInput], roles: Mapping[str, ModelSpec], seed: int) -> str:
    return stable_hash({
        "stage": stage.config(),
        "inputs": [{"label": i.label, "identity": i.log.header.identity, "join": i.join} for i in inputs],
        "roles": {r: {"spec": s.raw, "options": dict(s.options)} for r, s in sorted(roles.items())},
        "seed": seed,
    })


def joined_keys(inputs: Sequence[StageInput]) -> tuple[list[str], dict[str, dict[str, tuple[SampleRecord, ...]]], int]:
    """(keys in the first input's order, per key the records of every input, keys skipped)."""
    if not inputs:
        raise ConfigError("a stage needs at least one input log")
    keyed = [i.keyed() for i in inputs]
    keys = [k for k in keyed[0] if all(k in other for other in keyed[1:])]
    skipped = len(set().union(*keyed)) - len(keys)
    return keys, {k: {i.label: m[k] for i, m in zip(inputs, keyed, strict=True)} for k in keys}, skipped


async def run_stage(stage: Stage, inputs: Sequence[StageInput], output: Path,
                    options: StageOptions = StageOptions()) -> SummaryRecord:
    """Run (or resume) a stage into `output`; returns its summary."""
    started = time.perf_counter()
    meter = EnergyMeter()
    missing = sorted(set(stage.roles) - set(options.roles))
    if missing:
        raise ConfigError(f"stage {stage.name!r} needs a {missing[0]!r} model: give it with --role {missing[0]}=SPEC")
    keys, by_key, skipped = joined_keys(inputs)
    keys, joined = stage.units(keys, by_key)
    identity = stage_identity(stage, inputs, {r: options.roles[r] for r in stage.roles}, options.seed)
    existing = read_log(output) if output.exists() else None
    if existing is not None and existing.header.identity != identity:
        raise RunLogError(f"{output}: was written by a different stage run (other inputs, stage or roles); "
                          "remove it or choose another output")
    engines, cache = await _open_roles(stage, options)
    try:
        roles = {r: (options.roles[r], engines[r]) for r in engines}
        header = existing.header if existing else stage.header(inputs, identity, roles)
        if skipped and not existing:
            header = dataclasses.replace(header, extra={**header.extra, "unjoined_keys": skipped})
        done = dict(existing.samples) if existing else {}
        pending = [k for k in keys if k not in done or (done[k].error and stage.retry(done[k]))]
        with LogWriter(output) as writer:
            if existing is None:
                writer.append(header.to_json())
            await _process_all(stage, pending, joined, engines, options, writer, done)
            chosen = [done[k] for k in keys]
            seconds = time.perf_counter() - started
            summary = stage.summary(chosen, seconds, len(pending), engines, options.seed,
                                    energy=meter.panel(seconds, EnergySettings()))
            writer.append(summary.to_json())
        content = LogContent(header.to_json(), summary.to_json(), {k: done[k].to_json() for k in keys},
                             {k: writer.sample_offsets.get(k, -1) for k in keys})
        registry.notify_log_finished(output, content)
        return summary
    finally:
        await _close_roles(engines, cache)


async def _process_all(stage: Stage, pending: Sequence[str], joined: Mapping[str, Mapping[str, tuple[SampleRecord, ...]]],
                       engines: Mapping[str, Engine], options: StageOptions, writer: LogWriter,
                       done: dict[str, SampleRecord]) -> None:
    window = asyncio.Semaphore(max(1, options.concurrency))

    async def one(key: str) -> SampleRecord:
        async with window:
            ctx = ScoreContext(key, options.seed, {r: _execute(e, key, options.seed) for r, e in engines.items()})
            try:
                return await stage.process(key, joined[key], ctx)
            except Exception as exc:  # recorded on the key, retried by the next run
                return SampleRecord(id=key, error=f"stage failed: {type(exc).__name__}: {exc}")

    bar = tqdm(total=len(pending), desc=stage.name, unit="sample", disable=not options.progress, leave=False)
    jobs = [asyncio.ensure_future(one(k)) for k in pending]
    try:
        for job in asyncio.as_completed(jobs):
            record = await job
            writer.append(record.to_json())  # each record as soon as it is done: a kill loses none
            done[record.id] = record
            bar.update(1)
    finally:
        bar.close()
        for job in jobs:
            job.cancel()


def _execute(engine: Engine, key: str, seed: int) -> Any:
    async def execute(requests: Sequence[Request]) -> list[Response]:
        return await engine.execute(tag_requests(requests, key, seed))

    return execute


async def _open_roles(stage: Stage, options: StageOptions) -> tuple[dict[str, Engine], ResponseCache | None]:
    if not stage.roles:
        return {}, None
    for role, needs in stage.roles.items():  # declared capabilities: before any model loads
        declared = model_facts(options.roles[role]).capabilities
        if declared is not None and needs - declared:
            raise ConfigError(f"stage {stage.name!r} needs {', '.join(sorted(needs - declared))} from its "
                              f"{role!r} model {options.roles[role].raw!r}, which does not support it")
    cache = (ResponseCache((options.cache_dir or default_cache_dir()) / "responses.sqlite")
             if options.use_cache else None)
    engines: dict[str, Engine] = {}
    for role, needs in stage.roles.items():
        backend = create_backend(options.roles[role])
        engines[role] = Engine(backend, cache, namespace=role)
        missing = needs - backend.capabilities
        if missing:
            await _close_roles(engines, cache)
            raise ConfigError(f"stage {stage.name!r} needs {', '.join(sorted(missing))} from its {role!r} "
                              f"model {options.roles[role].raw!r}, which does not support it")
    return engines, cache


async def _close_roles(engines: Mapping[str, Engine], cache: ResponseCache | None) -> None:
    try:
        if cache is not None:
            cache.close()
    finally:
        for engine in engines.values():
            await engine.backend.aclose()
