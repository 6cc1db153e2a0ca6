"""`evalkit import-lmeval DIR`: lm-eval output folders as evalkit run logs.

Each `results_*.json` (the newest per folder) with its `samples_<task>_*.jsonl` becomes one log
per top-level task or group (a group's tasks are its subtasks, sub-groups its categories). The
aggregates are lm-eval's own numbers (not recomputed), with n from `n-samples` and a 95% CI
where the samples file has the per-item values of a mean; lm-eval's results dict is kept in the
summary's details, so `evalkit show --format lmeval` writes it back unchanged. Then the
leaderboard, gates and the UI read lm-eval's runs like any other.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, DataError
from evalkit.lmeval.scoring import metric_name, with_interval
from evalkit.log.build import now
from evalkit.log.io import LogWriter
from evalkit.log.records import HeaderRecord, SampleRecord, SummaryRecord
from evalkit.results import GroupMetrics, TaskResults
from evalkit.types import Response, Score, stable_hash


def import_dir(source: Path, output_dir: Path) -> list[Path]:
    if not source.is_dir():
        raise ConfigError(f"{source}: not a folder of lm-eval output")
    found = sorted(source.rglob("results_*.json"))
    if not found:
        raise DataError(f"{source}: no lm-eval results_*.json in it (lm_eval --output_path writes them)")
    newest: dict[Path, Path] = {}
    for path in found:  # lm-eval stamps the names with the time: the last one sorts last
        newest[path.parent] = path
    written: list[Path] = []
    for path in newest.values():
        written.extend(import_results(path, output_dir))
    return written


def import_results(path: Path, output_dir: Path) -> list[Path]:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not an lm-eval results file ({exc})") from None
    if not isinstance(results, dict) or not isinstance(results.get("results"), dict):
        raise DataError(f"{path}: not an lm-eval results file (no 'results' object)")
    children = results.get("group_subtasks") or {}
    nested = {c for members in children.values() for c in members}
    tops = [name for name in results["results"] if name not in nested]
    model = _model_spec(results)
    return [_write_log(path, results, top, model, output_dir) for top in tops]


def _write_log(path: Path, results: Mapping[str, Any], top: str, model: str, output_dir: Path) -> Path:
    leaves, groups = _members(top, results.get("group_subtasks") or {})
    samples = {leaf: _samples(path.parent, leaf) for leaf in leaves}
    records = [_record(leaf, row) for leaf in leaves for row in samples[leaf]]
    part = _subset(results, [*groups, *leaves])
    summary = SummaryRecord(_task_results(part, top, leaves, groups, samples), len(records), len(records), 0,
                            finished_at=now(), timings={"imported_from": str(path)})
    identity = stable_hash({"model": model, "task": top, "results": str(path.resolve())})
    header = HeaderRecord(
        task={"name": f"lmeval:{top}", "version": str((results.get("versions") or {}).get(top, "")),
              "prompt_format": f"lm-eval {top}", "lm_eval": str(results.get("lm_eval_version", ""))},
        model={"spec": model, "backend": "lm-eval", "target": model},
        identity=identity, config={"limit": (results.get("config") or {}).get("limit"),
                                   "num_fewshot": (results.get("n-shot") or {}).get(top, 0), "imported": str(path)},
        headline_metric=_headline(results["results"].get(top, {})), data_origin=f"lm-eval output {path}",
        n_samples_planned=len(records), created_at=now())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"lmeval_{model}").strip("_")[:120]
    target = output_dir / safe / f"lmeval:{top}-{identity[:10]}.jsonl"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)  # an import is rewritten whole, never appended to
    with LogWriter(target) as writer:
        writer.append(header.to_json())
        writer.append_many([r.to_json() for r in records])
        writer.append(summary.to_json())
    return target


def _members(top: str, children: Mapping[str, list[str]]) -> tuple[list[str], list[str]]:
    """(leaf tasks, groups) under `top`, top included, in lm-eval's order."""
    if top not in children:
        return [top], []
    leaves, groups = [], [top]
    for child in children[top]:
        sub_leaves, sub_groups = _members(child, children)
        leaves += sub_leaves
        groups += sub_groups
    return leaves, groups


def _subset(results: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    keys = ("results", "groups", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples")
    return {key: {n: (results.get(key) or {})[n] for n in names if n in (results.get(key) or {})} for key in keys}


def _samples(folder: Path, task: str) -> list[dict[str, Any]]:
    files = sorted(folder.glob(f"samples_{task}_*.jsonl"))
    if not files:
        return []
    rows = []
    for line_no, line in enumerate(files[-1].read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise DataError(f"{files[-1]}:{line_no}: not a JSON line") from None
    return rows


def _record(leaf: str, row: Mapping[str, Any]) -> SampleRecord:
    metrics = {f"{m},{row.get('filter', 'none')}": row[m] for m in row.get("metrics", []) if m in row}
    responses = tuple(_response(r) for r in row.get("resps", []))
    head = next(iter(metrics.values()), math.nan)
    score = Score(float(head) if isinstance(head, (int, float)) else math.nan, row.get("filtered_resps"),
                  {"lmeval": metrics, "filtered_resps": {row.get("filter", "none"): row.get("filtered_resps")}})
    args = row.get("arguments") or {}
    first: Any = next(iter(args.values()), {}) if isinstance(args, dict) else {}
    return SampleRecord(f"{leaf}/{row.get('doc_id')}", leaf, "", row.get("target"), (),
                        {"doc_id": row.get("doc_id"), "doc": row.get("doc")}, (),
                        str(first.get("arg_0", "")) if isinstance(first, dict) else "", (), responses, score, None)


def _response(resp: Any) -> Response:
    """One entry of `resps`: lm-eval writes a log-likelihood as ["-1.25", "False"] (strings)."""
    value = resp[0] if isinstance(resp, list) and resp else resp
    if isinstance(value, list) and len(value) == 2 and str(value[1]) in ("True", "False", "true", "false"):
        try:
            return Response(logprob=float(value[0]), is_greedy=str(value[1]).lower() == "true")
        except ValueError:
            pass
    return Response(text=str(value))


def _task_results(part: Mapping[str, Any], top: str, leaves: list[str], groups: list[str],
                  samples: Mapping[str, list[dict[str, Any]]]) -> TaskResults:
    def metrics_of(name: str, members: list[str]) -> GroupMetrics:
        values = part["results"].get(name, {})
        better = part["higher_is_better"].get(name, {})
        out: GroupMetrics = {}
        for key, value in values.items():
            metric, _, filter_key = key.partition(",")
            if not filter_key or "_stderr" in metric or not isinstance(value, (int, float)):
                continue
            per_task = [[row[metric] for row in samples.get(m, []) if row.get("filter") == filter_key and metric in row]
                        for m in members]
            count = (part["n-samples"].get(name) or {}).get("effective") if name in part["n-samples"] else None
            out[metric_name(key)] = with_interval(metric_name(key), float(value), per_task, better.get(metric, True),
                                                  n=count)
        return out

    leaf_metrics = {leaf: metrics_of(leaf, [leaf]) for leaf in leaves}
    group_metrics = {g: metrics_of(g, _members(g, part["group_subtasks"])[0]) for g in groups}
    details = {"lmeval": dict(part)}
    if not groups:
        return TaskResults(leaf_metrics[top], details=details)
    overall = group_metrics.pop(top)
    return TaskResults(overall, leaf_metrics, group_metrics, details)


def _headline(values: Mapping[str, Any]) -> str:
    key = next((k for k in values if "," in k and "_stderr" not in k), "acc,none")
    return metric_name(key)


def _model_spec(results: Mapping[str, Any]) -> str:
    config = results.get("config") or {}
    args = config.get("model_args")
    if isinstance(args, dict):
        args = ",".join(f"{k}={v}" for k, v in args.items())
    name = results.get("model_name") or config.get("model") or "unknown"
    return f"{config.get('model', name)}:{args}" if args else str(name)
