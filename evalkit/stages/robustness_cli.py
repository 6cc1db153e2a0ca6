"""`evalkit robustness RUNS` and `evalkit format-spread RUNS`: plugin commands.

`robustness` finds, for every log of a perturbed task (`task@perturbation(...)`), the clean
log of the same model and task (the same run settings, the last wrapper removed), runs the
robustness stage on the pair into `<perturbed log's folder>/robustness/<its name>.jsonl`
(resumable; `evalkit show` and the leaderboard read it) and prints one row per perturbation,
with Holm-adjusted McNemar p-values per model. `format-spread` tabulates the headline
metric of a task run under several `@format(name=...)` wrappers by several models.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError
from evalkit.log.io import RunLog, find_logs, read_log
from evalkit.metrics.paired import holm_adjust
from evalkit.results import TaskResults
from evalkit.stages.base import StageInput, StageOptions, run_stage
from evalkit.stages.robustness import Robustness, group_gaps


@dataclass(frozen=True)
class Pair:
    clean: RunLog
    perturbed: RunLog
    kind: str

    @property
    def output(self) -> Path:
        """`<runs>/robustness/<model>/<perturbed log's name>`: one folder for every model's
        robustness logs (`evalkit leaderboard <runs>/robustness` is the robustness view)."""
        model_dir = self.perturbed.path.parent
        return model_dir.parent / "robustness" / model_dir.name / self.perturbed.path.name


def clean_task_config(task: Mapping[str, Any]) -> dict[str, Any] | None:
    """The config of the task a perturbed task wraps (None: the last wrapper is no perturbation)."""
    wrappers = list(task.get("wrappers") or [])
    if not wrappers or "perturbation" not in wrappers[-1]:
        return None
    out = {k: v for k, v in task.items() if k != "wrappers"}
    out["name"] = str(task.get("name", "")).rsplit("@", 1)[0]
    if wrappers[:-1]:
        out["wrappers"] = wrappers[:-1]
    return out


def _run_key(log: RunLog, task: Mapping[str, Any]) -> str:
    header = log.header
    return json.dumps([header.model_spec, header.model.get("options"), dict(task), dict(header.config)],
                      sort_keys=True, default=str)


def find_pairs(runs: Path) -> tuple[list[Pair], list[str]]:
    """(clean/perturbed pairs, perturbed logs without a clean one)."""
    logs = [read_log(p) for p in find_logs(runs)]
    runs_only = [log for log in logs if log.header.kind == "run" and log.summary is not None]
    clean_by_key = {_run_key(log, log.header.task): log for log in runs_only}
    pairs, lonely = [], []
    for log in runs_only:
        wanted = clean_task_config(log.header.task)
        if wanted is None:
            continue
        clean = clean_by_key.get(_run_key(log, wanted))
        if clean is None:
            lonely.append(f"{log.path} ({wanted['name']} not run with the same model and settings)")
            continue
        kind = str((log.header.task.get("wrappers") or [{}])[-1].get("kind", "invariance"))
        pairs.append(Pair(clean, log, kind))
    return pairs, lonely


def run_pair(pair: Pair, seed: int, resamples: int) -> TaskResults:
    stage = Robustness(pair.perturbed.header.task_name, pair.kind, resamples=resamples)
    inputs = [StageInput("clean", pair.clean, "id"), StageInput("perturbed", pair.perturbed, "source")]
    summary = asyncio.run(run_stage(stage, inputs, pair.output, StageOptions(seed=seed, progress=False)))
    return summary.results


ROW_METRICS = ("clean", "perturbed", "delta", "mcnemar_p", "invariance", "sensitivity", "changed_n",
               "delta_changed", "prediction_changed")


def robustness_rows(pairs: Sequence[Pair], results: Sequence[TaskResults]) -> list[dict[str, Any]]:
    rows = []
    for pair, res in zip(pairs, results, strict=True):
        row: dict[str, Any] = {"model": pair.perturbed.header.model_spec,
                               "task": pair.perturbed.header.task_name, "kind": pair.kind,
                               "log": str(pair.output)}
        for name in ROW_METRICS:
            if name in res.overall:
                row[name] = res.overall[name].to_dict()
        row.update({f"group_gap_{k}": v for k, v in group_gaps(res).items()})
        rows.append(row)
    for model in {r["model"] for r in rows}:  # Holm over the perturbations of one model
        mine = [r for r in rows if r["model"] == model and "mcnemar_p" in r]
        adjusted = [float(p) for p in holm_adjust([r["mcnemar_p"]["value"] for r in mine])]
        for r, p in zip(mine, adjusted, strict=True):
            r["mcnemar_p_holm"] = p
    return rows


def _cell(row: Mapping[str, Any], name: str, ci: bool = False) -> str:
    m = row.get(name)
    if m is None:
        return "—"
    value = m["value"]
    if value is None or value != value:  # NaN: no samples
        return "—"
    text = str(int(value)) if name == "changed_n" else f"{value:.4f}"
    if ci and m["ci"][0] is not None:
        text += f" [{m['ci'][0]:+.3f}, {m['ci'][1]:+.3f}]"
    return text


def format_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    head = ["model", "task", "kind", "n", "clean", "perturbed", "delta [95% CI]", "McNemar p (Holm)",
            "invariance [95% CI]", "sensitivity"]
    table = [[r["model"], r["task"], r["kind"], str(r.get("delta", {}).get("n", 0)), _cell(r, "clean"),
              _cell(r, "perturbed"), _cell(r, "delta", ci=True),
              f"{_cell(r, 'mcnemar_p')} ({r['mcnemar_p_holm']:.4f})" if "mcnemar_p_holm" in r else "—",
              _cell(r, "invariance", ci=True) if "invariance" in r else "—", _cell(r, "sensitivity", ci=True)]
             for r in rows]
    extra = [f"{r['task']} ({r['model']}): {_cell(r, 'changed_n')} samples changed; on them delta "
             f"{_cell(r, 'delta_changed', ci=True)}, prediction changed {_cell(r, 'prediction_changed', ci=True)}"
             for r in rows if "changed_n" in r]
    return "\n".join([_text_table(head, table), *extra])


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class RobustnessCommand:
    help = "pair clean and perturbed run logs (task@perturbation): paired deltas, McNemar, invariance"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("runs", type=Path, nargs="?", default=Path("runs"), metavar="RUNS_DIR")
        parser.add_argument("--json", action="store_true", help="machine-readable output")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
        parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")

    def run(self, args: argparse.Namespace) -> int:
        if args.resamples < 10:
            raise ConfigError("--resamples must be at least 10")
        pairs, lonely = find_pairs(args.runs)
        for note in lonely:
            print(f"evalkit: skipped {note}", file=sys.stderr)
        if not pairs:
            raise ConfigError(f"{args.runs}: no perturbed log (task@perturbation) with its clean log")
        rows = robustness_rows(pairs, [run_pair(p, args.seed, args.resamples) for p in pairs])
        print(json.dumps(rows, indent=1) if args.json else format_rows(rows))
        return 0


class FormatSpreadCommand:
    help = "prompt-format spread: a task under several @format(name=...) wrappers, by model"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("runs", type=Path, nargs="?", default=Path("runs"), metavar="RUNS_DIR")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def run(self, args: argparse.Namespace) -> int:
        from evalkit.perturb.spread import format_spread, render_spread

        tables = format_spread([read_log(p) for p in find_logs(args.runs)])
        if not tables:
            raise ConfigError(f"{args.runs}: no logs of a task@format(name=...) run")
        print(json.dumps([t.to_dict() for t in tables], indent=1) if args.json
              else "\n\n".join(render_spread(t) for t in tables))
        return 0


ROBUSTNESS = RobustnessCommand()
FORMAT_SPREAD = FormatSpreadCommand()
