"""`evalkit show RUN --format lmeval`: evalkit run logs in lm-eval's output layout.

Per model, one `results_<time>.json` (lm-eval's `results`, `groups`, `group_subtasks`,
`configs`, `versions`, `n-shot`, `higher_is_better`, `n-samples`, `config`) and one
`samples_<task>_<time>.jsonl` per task (`doc_id`, `doc`, `target`, `arguments`, `resps`,
`filtered_resps`, `filter`, `metrics` and the metric values), under `<output>/<model>/`, so
tools built for lm-eval's results (`lm_eval.utils.make_table`, its loggers) read evalkit runs.
An `lmeval:` run carries lm-eval's own results dict (computed by lm-eval's aggregation when
the run finished); another evalkit task is translated metric by metric (`acc` -> `acc,none`,
its standard error from its n).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError
from evalkit.log.io import RunLog, find_logs, read_log
from evalkit.log.records import SampleRecord
from evalkit.types import MetricValue

DEFAULT_OUTPUT = Path("lmeval_results")


def show_lmeval(run: Path, output: Path | None) -> str:
    """The `show_formats` writer: writes the files, returns what it wrote (one line each)."""
    if not run.exists():
        raise ConfigError(f"{run}: no such run log or directory")
    logs = [read_log(p) for p in find_logs(run)]
    logs = [log for log in logs if log.summary is not None and log.header.kind == "run"]
    if not logs:
        raise ConfigError(f"{run}: no finished run logs to write in lm-eval's format")
    by_model: dict[str, list[RunLog]] = defaultdict(list)
    for log in logs:
        by_model[log.path.parent.name].append(log)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime())
    written: list[Path] = []
    for model_dir, model_logs in sorted(by_model.items()):
        folder = (output or DEFAULT_OUTPUT) / model_dir
        folder.mkdir(parents=True, exist_ok=True)
        results, samples = results_of(model_logs)
        for task, rows in samples.items():
            path = folder / f"samples_{task}_{stamp}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            written.append(path)
        path = folder / f"results_{stamp}.json"
        path.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
        written.append(path)
    return "\n".join(f"wrote {p}" for p in written)


def results_of(logs: list[RunLog]) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """One model's logs as lm-eval's results dict and its samples per task."""
    merged: dict[str, Any] = {key: {} for key in ("results", "groups", "group_subtasks", "configs", "versions",
                                                  "n-shot", "higher_is_better", "n-samples")}
    samples: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        assert log.summary is not None
        own = log.summary.results.details.get("lmeval")
        part = dict(own) if isinstance(own, dict) else _translated(log)
        for key in merged:
            merged[key].update(part.get(key) or {})
        for record in log.samples.values():
            task = record.subtask if own and record.subtask else _task_label(log)
            samples.setdefault(task, []).append(sample_row(record, log))
    if not merged["groups"]:
        del merged["groups"]
    first = logs[0].header
    merged["config"] = {"model": "evalkit", "model_args": first.model_spec,
                        "limit": first.config.get("limit"), "bootstrap_iters": 100000,
                        "random_seed": first.config.get("seed", 0)}
    merged["model_name"] = first.model_spec
    merged["lm_eval_version"] = str(first.task.get("lm_eval", ""))
    merged["date"] = time.time()
    for rows in samples.values():
        rows.sort(key=lambda r: (r["doc_id"] if isinstance(r["doc_id"], int) else -1, str(r["doc_id"])))
    return merged, samples


def sample_row(record: SampleRecord, log: RunLog) -> dict[str, Any]:
    """A record as a line of lm-eval's samples file (its tracker writes targets and responses
    as strings: `sanitize_list`)."""
    from lm_eval.utils import sanitize_list

    score = record.score
    extras = dict(score.extras) if score else {}
    metrics = extras.get("lmeval") or ({"acc,none": score.value} if score else {})
    filtered = extras.get("filtered_resps") or {"none": [r.logprob if r.text is None else r.text
                                                         for r in record.responses]}
    filter_key = next(iter(filtered), "none")
    arguments = {f"gen_args_{i}": _arguments(r.to_dict(), record.prompt) for i, r in enumerate(record.requests)}
    doc = record.metadata.get("doc", {"input": record.input, "choices": list(record.choices)})
    row: dict[str, Any] = {
        "doc_id": record.metadata.get("doc_id", record.id), "doc": doc, "target": str(record.target),
        "arguments": arguments,
        "resps": sanitize_list([[(r.logprob, bool(r.is_greedy)) if r.text is None else r.text]
                                for r in record.responses]),
        "filtered_resps": sanitize_list(filtered[filter_key]), "filter": filter_key,
        "metrics": sorted({k.rpartition(",")[0] for k in metrics if k.endswith("," + filter_key)}),
        "doc_hash": _hash(json.dumps(doc, indent=2, ensure_ascii=False)),
        "prompt_hash": _hash(record.prompt), "target_hash": _hash(str(record.target)),
    }
    row.update({k.rpartition(",")[0]: v for k, v in metrics.items() if k.endswith("," + filter_key)})
    return row


def _arguments(request: dict[str, Any], prompt: str) -> dict[str, Any]:
    if request.get("kind") == "loglikelihood":
        return {"arg_0": request.get("context", prompt), "arg_1": request.get("continuation")}
    params = request.get("params") or {}
    return {"arg_0": prompt, "arg_1": {"until": params.get("stop", []), "max_gen_toks": params.get("max_tokens")}}


def _translated(log: RunLog) -> dict[str, Any]:
    """A native evalkit task's aggregates in lm-eval's layout (subtasks become tasks)."""
    assert log.summary is not None
    task = _task_label(log)
    results = log.summary.results
    out: dict[str, Any] = {"results": {}, "group_subtasks": {}, "versions": {}, "n-shot": {},
                           "higher_is_better": {}, "n-samples": {}, "configs": {}}
    for name, metrics in [(task, results.overall), *sorted(results.subtasks.items())]:
        out["results"][name] = {"alias": name if name == task else f" - {name}", **_metric_entries(metrics)}
        out["versions"][name] = str(log.header.task.get("version", ""))
        out["n-shot"][name] = int(log.header.config.get("num_fewshot") or 0)
        out["higher_is_better"][name] = {k: m.higher_is_better for k, m in metrics.items()}
        n = max((m.n for m in metrics.values()), default=0)
        out["n-samples"][name] = {"original": n, "effective": n}
        out["configs"][name] = {"task": name, "evalkit_task": dict(log.header.task)}
    if results.subtasks:
        out["group_subtasks"][task] = sorted(results.subtasks)
        out["groups"] = {task: out["results"][task]}
    return out


def _metric_entries(metrics: dict[str, MetricValue] | Any) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for name, m in metrics.items():
        if name == "errors" or not math.isfinite(m.value):
            continue
        entries[f"{name},none"] = m.value
        entries[f"{name}_stderr,none"] = _stderr(m)
    return entries


def _stderr(m: MetricValue) -> float | str:
    """lm-eval's standard error: for a proportion, the sample std over √n (ddof=1)."""
    if m.ci_method == "wilson" and m.n > 1:
        return math.sqrt(m.value * (1 - m.value) / (m.n - 1))
    if m.ci_low is not None and m.ci_high is not None:
        return (m.ci_high - m.ci_low) / (2 * 1.959963984540054)
    return "N/A"


def _task_label(log: RunLog) -> str:
    return log.header.task_name.removeprefix("lmeval:")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
