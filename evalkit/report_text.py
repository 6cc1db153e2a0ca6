"""Plain-text and JSON views of run logs for the terminal (`evalkit show`, `list`, `run`)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from evalkit import registry
from evalkit.log.io import find_logs, read_log
from evalkit.models import EMBEDDED_MODELS, backend_info
from evalkit.results import TaskResults
from evalkit.task import get_task, task_entry


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4f}"


def _metric_rows(group: str, metrics: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, m in metrics.items():
        low, high = m["ci"] if isinstance(m, dict) else (m.ci_low, m.ci_high)
        value = m["value"] if isinstance(m, dict) else m.value
        n = m["n"] if isinstance(m, dict) else m.n
        ci = f"[{fmt(low)}, {fmt(high)}]" if low is not None else ""
        rows.append([group, name, fmt(value), ci, str(n)])
    return rows


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def results_table(title: str, results: TaskResults | dict[str, Any], *, subtasks: bool) -> str:
    data = results.to_dict() if isinstance(results, TaskResults) else results
    rows = _metric_rows("overall", data["overall"])
    for name, metrics in data.get("categories", {}).items():
        rows += _metric_rows(f"category:{name}", metrics)
    if subtasks:
        for name, metrics in data.get("subtasks", {}).items():
            rows += _metric_rows(f"subtask:{name}", metrics)
    return f"{title}\n" + _table(rows, ["group", "metric", "value", "95% CI", "n"])


def _engines(fingerprint: Mapping[str, Any]) -> dict[str, str]:
    """Which engine answered which request kind, for a model split across engines."""
    routes = fingerprint.get("routes")
    return {str(k): str(v) for k, v in routes.items()} if isinstance(routes, Mapping) else {}


def show_logs(path: Path, *, as_json: bool, subtasks: bool) -> str:
    entries: list[dict[str, Any]] = []
    for log_path in find_logs(path):
        log = read_log(log_path)
        summary = log.summary
        entries.append({
            "path": str(log_path),
            "task": log.header.task_name,
            "model": log.header.model_spec,
            "prompt_format": log.header.task.get("prompt_format"),
            "kind": log.header.kind,
            "complete": summary is not None and summary.complete and summary.n_samples == len(log.samples),
            "n_samples": summary.n_samples if summary else len(log.samples),
            "n_errors": summary.n_errors if summary else None,
            "results": summary.results.to_dict() if summary else None,
            "engines": _engines(log.header.model_fingerprint),
            "efficiency": dict(summary.efficiency) if summary and summary.efficiency else None,
        })
    if as_json:
        return json.dumps({"logs": entries}, indent=2, ensure_ascii=False)
    blocks = []
    for e in entries:
        title = f"{e['task']} · {e['model']} · {e['prompt_format'] or e['kind']} ({e['path']})"
        if e["engines"]:
            title += "\n  engines: " + ", ".join(f"{kind} on {engine}" for kind, engine in e["engines"].items())
        if e["results"] is None:
            blocks.append(f"{title}\n  unfinished: no summary yet; rerun the same command to finish it")
        else:
            panel = efficiency_lines(e["efficiency"]) if e["efficiency"] else []
            blocks.append("\n".join([results_table(title, e["results"], subtasks=subtasks), *panel]))
    return "\n\n".join(blocks) if blocks else f"no run logs under {path}"


def _num(value: Any, unit: str = "", digits: int = 3) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    return f"{value:,.{digits}f}{unit}" if isinstance(value, float) else f"{value:,}{unit}"


def _latency(stats: Mapping[str, Any] | None) -> str:
    if not stats:
        return "—"
    return " · ".join(f"p{q} {_num(stats.get(f'p{q}'), ' s')}" for q in (50, 95, 99)) + f" (n = {stats.get('n')})"


def efficiency_lines(panel: Mapping[str, Any]) -> list[str]:
    """The efficiency panel of a summary as indented lines under the results table."""
    req, tok = panel.get("requests") or {}, panel.get("tokens") or {}
    lines = [
        f"  efficiency: {_num(panel.get('wall_seconds'), ' s', 1)} wall · {_num(req.get('sent'))} requests sent "
        f"({_num(req.get('cache_hits'))} from the cache, {_num(req.get('per_second'), '/s', 2)}) · "
        f"prompt {_num(tok.get('prompt'))} tok ({_num(tok.get('prompt_per_second'), '/s', 1)}) · "
        f"generated {_num(tok.get('completion'))} tok ({_num(tok.get('completion_per_second'), '/s', 1)})"
        + (f" · ${panel['cost_usd']:.4f}" if isinstance(panel.get("cost_usd"), (int, float)) else ""),
        f"  latency: {_latency(panel.get('latency_seconds'))}; {panel.get('latency_basis', '')}",
        "  first token: " + (_latency(panel.get("time_to_first_token_seconds"))
                             if panel.get("time_to_first_token_seconds") else
                             str(panel.get("time_to_first_token_note", "—"))),
    ]
    energy = panel.get("energy")
    if isinstance(energy, Mapping):
        inputs = energy.get("inputs") or {}
        lines.append(f"  energy: {energy.get('kwh', 0):.3g} kWh · CO2e {energy.get('co2e_lb', 0):.3g} lb "
                     f"({energy.get('co2e_kg', 0):.3g} kg); {energy.get('formula', '')}")
        for name, item in inputs.items():
            if isinstance(item, Mapping):
                lines.append(f"    {name} = {item.get('value', 0):.4g}  ({item.get('source', '')})")
    return lines


#: members of a task family listed without --subtasks: the family itself and its prompt forms
_HEADLINE_SUFFIXES = ("", "_text", "_gen", "_chat")


def list_tasks(*, subtasks: bool = False) -> str:
    """One row per task; a family's subtasks (MMLU subjects, C-Eval subjects, HumanEval's
    n-sample variants) are counted under it unless `subtasks` asks for them all."""
    rows = []
    hidden: dict[str, list[str]] = {}
    for name in registry.tasks.names():
        group = task_entry(name).group
        if group and not subtasks and name not in {group + s for s in _HEADLINE_SUFFIXES}:
            hidden.setdefault(group, []).append(name)
            continue
        task = get_task(name)
        rows.append([name, task.prompt_format, ",".join(sorted(task.requires)), task.description])
    text = _table(rows, ["task", "prompt format", "needs", "description"])
    if hidden:
        lines = [f"  {group}: {len(names)} more (e.g. {', '.join(names[:2])})" for group, names in sorted(hidden.items())]
        text += "\n\nsubtasks and variants (`evalkit list tasks --subtasks` lists them):\n" + "\n".join(lines)
    return text


def list_task_params() -> str:
    """Every task with parameters, and each parameter's type, default and meaning."""
    blocks: list[str] = []
    first_of_group: dict[str, tuple[str, dict[str, object]]] = {}
    for name in registry.tasks.names():
        entry = task_entry(name)
        if not entry.params:
            continue
        defaults = {p.name: p.default for p in entry.params}
        head = first_of_group.get(entry.group) if entry.group else None
        if head is not None and list(head[1]) == list(defaults):  # a variant: only defaults differ
            changed = ", ".join(f"{k}={v}" for k, v in defaults.items() if head[1][k] != v)
            blocks[-1] += f"\n{name}: as {head[0]}, defaults {changed}"
            continue
        first_of_group.setdefault(entry.group, (name, defaults))
        blocks.append(name + "\n" + "\n".join(f"  -T {p.describe()}" for p in entry.params))
    none = [n for n in registry.tasks.names() if not task_entry(n).params]
    tail = f"\n\n{len(none)} other tasks take no parameters." if none else ""
    return "\n\n".join(blocks) + tail


def list_models(*, options: bool = False) -> str:
    rows = []
    for name in registry.backends.names():
        info = backend_info(name)
        installed = info.installed()
        hint = "" if installed else (f"pip install 'evalkit[{info.extra}]'" if info.extra else "not available")
        rows.append([info.form, f"backend: {info.description}", "yes" if installed else "no", hint])
    for name, model in EMBEDDED_MODELS.items():
        try:
            metadata.distribution(model.package)
            installed = True
        except metadata.PackageNotFoundError:
            installed = False
        rows.append([name, f"embedded ({model.description}; default backend {model.default_backend})",
                     "yes" if installed else "no", "" if installed else model.install_hint])
    text = _table(rows, ["model", "kind", "installed", "to install"])
    if options:
        blocks = [f"{name} (--model-args)\n" + "\n".join(f"  {o.describe()}" for o in backend_info(name).options)
                  for name in registry.backends.names()]
        text += "\n\n" + "\n\n".join(blocks)
    return text
