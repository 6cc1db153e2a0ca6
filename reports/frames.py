"""Run logs → compact per-run arrays and pandas frames (runs, samples, scores).

Reports read only run logs. A log is scanned once into a compact form (sample ids,
subtasks, score values, confidences, error flags and each record's byte offset, so a
sample browser can later fetch single records by seeking, without re-reading the log).
The scan is kept in an on-disk index keyed by the log's path, size and mtime, so a
second process (the UI after `evalkit leaderboard`, or a restart) does not parse again.

A log that cannot be read — corrupt JSON, an unknown schema version, missing fields,
truncated, empty — is skipped with its reason; it never stops the others.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from evalkit.errors import RunLogError
from evalkit.log import LogContent, check_header, find_logs, parse_record, read_log

INDEX_FORMAT = 1
#: how often logs were parsed and index files loaded in this process (the UI bench reads it)
READS: Counter[str] = Counter()


@dataclass(frozen=True)
class SkippedLog:
    path: str
    reason: str


@dataclass(frozen=True)
class RunData:
    """One run log, compacted. Arrays are aligned: one entry per (latest) sample record."""

    path: str
    header: dict[str, Any]
    summary: dict[str, Any] | None
    ids: NDArray[np.str_]
    subtasks: NDArray[np.str_]
    #: score value; NaN where the sample errored or has no score
    values: NDArray[np.float64]
    #: top-label probability (NaN when the score has no probabilities)
    confidence: NDArray[np.float64]
    extracted: NDArray[np.str_]
    n_choices: NDArray[np.int64]
    errored: NDArray[np.bool_]
    offsets: NDArray[np.int64]

    @property
    def model(self) -> str:
        return str(self.header["model"]["spec"])

    @property
    def task(self) -> str:
        return str(self.header["task"]["name"])

    @property
    def headline_metric(self) -> str:
        return str(self.header.get("headline_metric") or "acc")

    @property
    def n_scored(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.values)))


@dataclass
class RunSet:
    """Every readable run under a directory; one run per (model, task) is used."""

    runs: list[RunData]
    skipped: list[SkippedLog] = field(default_factory=list)
    #: logs readable but not used: an older run of the same model and task
    superseded: list[SkippedLog] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return sorted({r.model for r in self.runs})

    @property
    def tasks(self) -> list[str]:
        return sorted({r.task for r in self.runs})

    def get(self, model: str, task: str) -> RunData | None:
        return next((r for r in self.runs if r.model == model and r.task == task), None)


def load_runs(path: Path, *, index_dir: Path | None = None, workers: int = 1) -> RunSet:
    """Read every log under `path` (a directory or one file); never raises for a bad log.

    `workers` > 1 scans unindexed logs in that many processes (the CLI's choice; a library
    caller opts in, since spawned processes re-import the caller's main module).
    """
    try:
        paths = find_logs(path)
    except RunLogError as exc:
        return RunSet([], [SkippedLog(str(path), str(exc))])
    return combine(scan_paths(paths, index_dir, workers=workers))


#: below this much unindexed log data, scanning here beats starting worker processes
PARALLEL_MIN_BYTES = 64 * 2**20


def scan_paths(paths: Sequence[Path], index_dir: Path | None = None, *,
               workers: int = 1) -> list[RunData | SkippedLog]:
    """Scan logs; with workers > 1, the unindexed ones in parallel processes (a first run)."""
    missing = [p for p in paths if not _indexed(p, index_dir)]
    workers = min(workers, len(missing))
    if workers < 2 or sum(_size(p) for p in missing) < PARALLEL_MIN_BYTES:
        return [scan_cached(p, index_dir) for p in paths]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:  # spawn, not fork: forking a threaded process can deadlock
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = list(pool.map(_scan_counted, missing, [index_dir] * len(missing)))
    except (BrokenProcessPool, OSError, RuntimeError):
        return [scan_cached(p, index_dir) for p in paths]  # no processes to be had: serially
    scanned = dict(zip(missing, results, strict=True))
    out = []
    for p in paths:
        if p in scanned:
            result, parsed = scanned[p]
            READS["log_parse"] += parsed
            out.append(result)
        else:
            out.append(scan_cached(p, index_dir))
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _scan_counted(path: Path, index_dir: Path | None) -> tuple[RunData | SkippedLog, int]:
    before = READS["log_parse"]
    result = scan_cached(path, index_dir)
    return result, READS["log_parse"] - before


def _indexed(path: Path, index_dir: Path | None) -> bool:
    try:
        index_file = _index_path(path, path.stat(), index_dir)
    except OSError:
        return True  # nothing to scan: scan_cached reports it
    return index_file is not None and index_file.is_file()


def combine(results: Iterable[RunData | SkippedLog]) -> RunSet:
    """Keep the newest run per (model, task); list the older ones as superseded."""
    runs: dict[tuple[str, str], RunData] = {}
    skipped: list[SkippedLog] = []
    superseded: list[SkippedLog] = []
    for item in results:
        if isinstance(item, SkippedLog):
            skipped.append(item)
            continue
        key = (item.model, item.task)
        old = runs.get(key)
        if old is None:
            runs[key] = item
            continue
        newer, older = (item, old) if _recency(item) >= _recency(old) else (old, item)
        runs[key] = newer
        superseded.append(SkippedLog(older.path, f"a newer run of {key[0]} on {key[1]} is used: {newer.path}"))
    ordered = sorted(runs.values(), key=lambda r: (r.model, r.task))
    return RunSet(ordered, skipped, superseded)


def _recency(run: RunData) -> tuple[str, int, str]:
    return (str(run.header.get("created_at") or ""), run.n_scored, run.path)


def scan_cached(path: Path, index_dir: Path | None = None) -> RunData | SkippedLog:
    """The scan of one log, from the on-disk index when the log is unchanged."""
    try:
        stat = path.stat()
    except OSError as exc:
        return SkippedLog(str(path), f"{path}: cannot read ({exc.strerror or exc})")
    index_file = _index_path(path, stat, index_dir)
    if index_file is not None and index_file.is_file():
        cached = _load_index(index_file, path)
        if cached is not None:
            return cached
    try:
        run = scan_log(path)
    except RunLogError as exc:
        return SkippedLog(str(path), str(exc))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return SkippedLog(str(path), f"{path}: unreadable run log ({exc.__class__.__name__}: {exc})")
    if index_file is not None:
        _save_index(index_file, run)
    return run


def index_content(path: Path, content: LogContent, index_dir: Path | None = None) -> RunData:
    """The scan of a log its writer has just finished, built from the records it holds
    (equal to `scan_log(path)`), saved to the on-disk index."""
    header = _check_run_header(path, dict(content.header))
    summary = _check_summary(path, 0, dict(content.summary))
    latest = {sid: (content.offsets[sid], _compact(path, 0, record)) for sid, record in content.samples.items()}
    run = _run_data(str(path), header, summary, latest)
    index_file = _index_path(path, path.stat(), index_dir)
    if index_file is not None:
        _save_index(index_file, run)
    return run


def scan_log(path: Path) -> RunData:
    """Parse a log into a RunData; raises RunLogError naming the file and line of a problem."""
    with path.open("rb") as fh:
        data = fh.read()
    READS["log_parse"] += 1
    if not data or not data.endswith(b"\n"):
        read_log(path)  # raises the core's message for an empty or truncated log
    header: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    offset = 0
    for line_no, raw in enumerate(data.split(b"\n")[:-1], start=1):
        start, offset = offset, offset + len(raw) + 1
        if not raw.strip():
            continue
        record = parse_record(path, line_no, raw)
        if header is None:
            header = _check_run_header(path, record)
        elif record.get("type") == "sample":
            latest[_sample_id(path, line_no, record)] = (start, _compact(path, line_no, record))
        elif record.get("type") == "summary":
            summary = _check_summary(path, line_no, record)
        else:
            raise RunLogError(f"{path}:{line_no}: unknown record type {record.get('type')!r}")
    if header is None:
        raise RunLogError(f"{path}: run log has no records")
    return _run_data(str(path), header, summary, latest)


def _check_run_header(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    header = check_header(path, record)
    task, model = header.get("task"), header.get("model")
    if not isinstance(task, dict) or not isinstance(task.get("name"), str):
        raise RunLogError(f"{path}:1: header field 'task' lacks a string 'name'")
    if not isinstance(model, dict) or not isinstance(model.get("spec"), str):
        raise RunLogError(f"{path}:1: header field 'model' lacks a string 'spec'")
    return header


def _sample_id(path: Path, line_no: int, record: dict[str, Any]) -> str:
    sid = record.get("id")
    if not isinstance(sid, str):
        raise RunLogError(f"{path}:{line_no}: sample record without a string 'id'")
    return sid


def _compact(path: Path, line_no: int, record: Mapping[str, Any]) -> dict[str, Any]:
    score, error = record.get("score"), record.get("error")
    if score is None and not error:
        raise RunLogError(f"{path}:{line_no}: sample record has neither a 'score' nor an 'error'")
    value, conf, extracted = float("nan"), float("nan"), ""
    if isinstance(score, dict) and not error:
        raw_value = score.get("value")
        if isinstance(raw_value, bool) or not isinstance(raw_value, (int, float)):
            raise RunLogError(f"{path}:{line_no}: sample score lacks a numeric 'value'")
        value = float(raw_value)
        probs = (score.get("extras") or {}).get("probs")
        if isinstance(probs, list) and probs and all(isinstance(p, (int, float)) for p in probs):
            conf = float(max(probs))
        extracted = "" if score.get("extracted") is None else str(score.get("extracted"))
    elif score is not None and not isinstance(score, dict):
        raise RunLogError(f"{path}:{line_no}: sample 'score' is not an object")
    choices = record.get("choices")
    return {
        "subtask": str(record.get("subtask") or ""), "value": value, "confidence": conf,
        "extracted": extracted, "n_choices": len(choices) if isinstance(choices, list) else 0,
        "errored": bool(error),
    }


def _check_summary(path: Path, line_no: int, record: dict[str, Any]) -> dict[str, Any]:
    results = record.get("results")
    if not isinstance(results, dict) or not isinstance(results.get("overall"), dict):
        raise RunLogError(f"{path}:{line_no}: summary record lacks 'results.overall'")
    return record


def _run_data(path: str, header: dict[str, Any], summary: dict[str, Any] | None,
              latest: dict[str, tuple[int, dict[str, Any]]]) -> RunData:
    rows = [row for _, row in latest.values()]
    return RunData(
        path=path, header=header, summary=summary,
        ids=np.array(list(latest), dtype=np.str_),
        subtasks=np.array([r["subtask"] for r in rows], dtype=np.str_),
        values=np.array([r["value"] for r in rows], dtype=np.float64),
        confidence=np.array([r["confidence"] for r in rows], dtype=np.float64),
        extracted=np.array([r["extracted"] for r in rows], dtype=np.str_),
        n_choices=np.array([r["n_choices"] for r in rows], dtype=np.int64),
        errored=np.array([r["errored"] for r in rows], dtype=np.bool_),
        offsets=np.array([off for off, _ in latest.values()], dtype=np.int64),
    )


ARRAY_FIELDS = ("ids", "subtasks", "values", "confidence", "extracted", "n_choices", "errored", "offsets")


def default_index_dir() -> Path:
    base = os.environ.get("EVALKIT_CACHE_DIR") or Path.home() / ".cache" / "evalkit"
    return Path(base) / "reports-index"


def _index_path(path: Path, stat: os.stat_result, index_dir: Path | None) -> Path | None:
    if os.environ.get("EVALKIT_REPORTS_NO_INDEX"):
        return None
    key = hashlib.sha256(str(path.resolve()).encode("utf-8")).hexdigest()[:24]
    return (index_dir or default_index_dir()) / f"{key}-{stat.st_size}-{stat.st_mtime_ns}-v{INDEX_FORMAT}.npz"


def _save_index(index_file: Path, run: RunData) -> None:
    meta = json.dumps({"header": run.header, "summary": run.summary})
    tmp = index_file.with_suffix(f".{os.getpid()}.tmp.npz")
    try:
        index_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, meta=np.array(meta), **{name: getattr(run, name) for name in ARRAY_FIELDS})
        tmp.replace(index_file)
    except OSError:
        tmp.unlink(missing_ok=True)  # an unwritable cache only costs speed


def _load_index(index_file: Path, path: Path) -> RunData | None:
    try:
        with np.load(index_file, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = {name: npz[name] for name in ARRAY_FIELDS}
    except (OSError, ValueError, KeyError):
        return None  # a damaged index entry is rebuilt from the log
    READS["index_load"] += 1
    return RunData(path=str(path), header=meta["header"], summary=meta["summary"], **arrays)


def fetch_records(run: RunData, positions: Sequence[int]) -> list[dict[str, Any]]:
    """Full sample records at the given positions of `run`'s arrays, read by seeking."""
    out = []
    with open(run.path, "rb") as fh:
        for pos in positions:
            fh.seek(int(run.offsets[pos]))
            line = fh.readline()
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                record = None
            ok = isinstance(record, dict) and record.get("id") == run.ids[pos]
            out.append(record if ok else {"id": str(run.ids[pos]), "error": "log changed since it was read"})
    READS["record_fetch"] += len(positions)
    return out


def runs_frame(runset: RunSet) -> Any:
    """One row per used run: identity, sample counts and efficiency (tokens/s, cost when known)."""
    import pandas as pd

    rows = []
    for run in runset.runs:
        summary = run.summary or {}
        engine = summary.get("engine") or {}
        timings = summary.get("timings") or {}
        wall = _number(timings.get("wall_seconds"))
        tokens = (_number(engine.get("prompt_tokens")) or 0.0) + (_number(engine.get("completion_tokens")) or 0.0)
        cost = _number(engine.get("cost_usd", summary.get("cost_usd")))
        panel = summary.get("efficiency") or {}
        latency = panel.get("latency_seconds") or {}
        energy = panel.get("energy") or {}
        rows.append({
            "model": run.model, "task": run.task, "samples": int(run.ids.size), "scored": run.n_scored,
            "errors": int(np.count_nonzero(run.errored)), "finished": bool(summary),
            "wall_seconds": wall, "samples_per_second": _number(timings.get("samples_per_second")),
            "prompt_tokens": _number(engine.get("prompt_tokens")),
            "completion_tokens": _number(engine.get("completion_tokens")),
            "tokens_per_second": tokens / wall if wall and tokens else None,
            "requests_per_second": _number((panel.get("requests") or {}).get("per_second")),
            "latency_p50_s": _number(latency.get("p50")), "latency_p95_s": _number(latency.get("p95")),
            "latency_p99_s": _number(latency.get("p99")),
            "energy_kwh": _number(energy.get("kwh")), "co2e_kg": _number(energy.get("co2e_kg")),
            "cost_usd": cost, "path": run.path,
        })
    return pd.DataFrame(rows)


def _number(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None
