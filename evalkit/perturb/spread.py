"""Prompt-format spread: one task's headline metric under K prompt formats, for each model,
with its min, max, range and standard deviation, each model's rank per format, and the pairs
of formats between which two models swap places (the field's "three formats, three
rankings" problem). Read from the logs of `task@format(name=...)` runs."""

from __future__ import annotations

import itertools
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.log.io import RunLog
from evalkit.types import MetricValue


@dataclass(frozen=True)
class SpreadTable:
    task: str
    metric: str
    formats: tuple[str, ...]
    models: tuple[str, ...]
    values: dict[tuple[str, str], MetricValue]

    def model_stats(self, model: str) -> dict[str, float]:
        got = [self.values[(model, f)].value for f in self.formats if (model, f) in self.values]
        return {"min": min(got), "max": max(got), "range": max(got) - min(got),
                "std": statistics.stdev(got) if len(got) > 1 else 0.0, "formats": len(got)}

    def ranks(self, fmt: str) -> dict[str, int]:
        """1 = best; ties share the better rank."""
        scored = {m: self.values[(m, fmt)].value for m in self.models if (m, fmt) in self.values}
        return {m: 1 + sum(1 for v in scored.values() if v > scored[m]) for m in scored}

    def flips(self) -> list[dict[str, str]]:
        """Every (two models, two formats) whose order differs between the formats."""
        out = []
        for a, b in itertools.combinations(self.models, 2):
            signs = {f: _sign(self.values[(a, f)].value - self.values[(b, f)].value) for f in self.formats
                     if (a, f) in self.values and (b, f) in self.values}
            for f1, f2 in itertools.combinations(signs, 2):
                if signs[f1] * signs[f2] < 0:
                    out.append({"models": f"{a} vs {b}", "formats": f"{f1} vs {f2}"})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "metric": self.metric, "formats": list(self.formats),
                "values": {m: {f: self.values[(m, f)].to_dict() for f in self.formats if (m, f) in self.values}
                           for m in self.models},
                "spread": {m: self.model_stats(m) for m in self.models},
                "ranks": {f: self.ranks(f) for f in self.formats}, "order_flips": self.flips()}


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def format_spread(logs: Sequence[RunLog]) -> list[SpreadTable]:
    groups: dict[str, dict[tuple[str, str], MetricValue]] = defaultdict(dict)
    names: dict[str, tuple[str, str]] = {}
    for log in logs:
        task = log.header.task
        wrappers = list(task.get("wrappers") or [])
        if log.header.kind != "run" or log.summary is None or not wrappers or "format" not in wrappers[-1]:
            continue
        base = {k: v for k, v in task.items() if k not in ("name", "wrappers", "prompt_format")}
        base_name = str(task.get("name", "")).rsplit("@", 1)[0]
        settings = {k: v for k, v in log.header.config.items() if k != "model_options"}  # models differ
        key = json.dumps([base_name, base, wrappers[:-1], settings], sort_keys=True, default=str)
        metric = log.header.headline_metric or "acc"
        value = log.summary.results.overall.get(metric)
        if value is not None:
            groups[key][(log.header.model_spec, str(wrappers[-1]["format"]))] = value
            names[key] = (base_name, metric)
    tables = []
    for key, values in groups.items():
        formats = tuple(sorted({f for _, f in values}))
        models = tuple(sorted({m for m, _ in values}))
        tables.append(SpreadTable(names[key][0], names[key][1], formats, models, values))
    return tables


def render_spread(table: SpreadTable) -> str:
    head = ["format", *table.models]
    rows = [[f, *(_cell(table, m, f) for m in table.models)] for f in table.formats]
    for stat in ("min", "max", "range", "std"):
        rows.append([stat, *(f"{table.model_stats(m)[stat]:.4f}" for m in table.models)])
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"{table.task}: {table.metric} under {len(table.formats)} prompt formats"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines.insert(2, "  ".join("-" * w for w in widths))
    flips = table.flips()
    if len(table.models) < 2:
        lines.append("order flips: need two models")
    elif flips:
        lines.append(f"order flips ({len(flips)}): " + "; ".join(f"{x['models']} between {x['formats']}" for x in flips))
    else:
        lines.append("order flips: none (the same order under every format)")
    return "\n".join(lines)


def _cell(table: SpreadTable, model: str, fmt: str) -> str:
    m = table.values.get((model, fmt))
    if m is None:
        return "—"
    rank = table.ranks(fmt)[model]
    ci = f" [{m.ci_low:.3f}, {m.ci_high:.3f}]" if m.ci_low is not None else ""
    return f"{m.value:.4f}{ci} #{rank}"
