"""The gate's settings: tolerances, the decision rule's knobs, what to gate, from TOML and flags.

`evalkit-gate.toml` (every key optional):

    [gate]
    tolerance = 0.0             # largest acceptable drop, absolute (metric units)
    relative_tolerance = 0.0    # ... or as a fraction of the baseline value; the larger applies
    alpha = 0.05                # family-wise error rate over the gated metrics (Holm)
    power = 0.8                 # for the minimum detectable effect
    min_samples = 30            # fewer shared samples: inconclusive (a CI from a handful is noise)
    inconclusive = "exit3"      # "exit3" (exit code 3), "pass" (exit 0) or "fail" (exit 1)
    by = ["task"]               # add "subtask" and/or "category" rows
    resamples = 10000           # paired-bootstrap resamples
    seed = 0
    noise_floor = "noise.json"  # written by `evalkit gate calibrate`

    [[gate.metric]]             # what to gate; default: each task's headline metric
    task = "mmlu*"              # fnmatch pattern over task names (default "*")
    metric = "acc"
    tolerance = 0.03            # overrides for this metric
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError

INCONCLUSIVE_POLICIES = ("exit3", "pass", "fail")
GROUPINGS = ("task", "subtask", "category")
_GATE_KEYS = frozenset({"tolerance", "relative_tolerance", "alpha", "power", "min_samples", "inconclusive",
                        "by", "resamples", "seed", "noise_floor", "metric"})
_METRIC_KEYS = frozenset({"task", "metric", "tolerance", "relative_tolerance"})


@dataclass(frozen=True)
class Tolerance:
    """The largest acceptable drop: max(absolute, relative × |baseline value|)."""

    absolute: float = 0.0
    relative: float = 0.0

    def allowed(self, baseline_value: float) -> float:
        return max(self.absolute, self.relative * abs(baseline_value))

    def describe(self) -> str:
        if self.relative and self.absolute:
            return f"max({self.absolute:g}, {self.relative:g} × |baseline|)"
        return f"{self.relative:g} × |baseline|" if self.relative else f"{self.absolute:g}"


@dataclass(frozen=True)
class MetricRule:
    """Gate `metric` on tasks matching `task`, with an optional tolerance of its own."""

    task: str
    metric: str
    tolerance: Tolerance | None = None

    def matches(self, task_name: str) -> bool:
        return fnmatch.fnmatchcase(task_name, self.task)


@dataclass(frozen=True)
class GateConfig:
    tolerance: Tolerance = field(default_factory=Tolerance)
    alpha: float = 0.05
    power: float = 0.8
    min_samples: int = 30
    inconclusive: str = "exit3"
    by: tuple[str, ...] = ("task",)
    resamples: int = 10_000
    seed: int = 0
    noise_floor: Path | None = None
    #: empty: each task's headline metric
    metrics: tuple[MetricRule, ...] = ()
    allow_task_mismatch: bool = False
    allow_sample_mismatch: bool = False

    def metrics_for(self, task_name: str, headline: str) -> list[MetricRule]:
        """The rules that apply to a task, one per metric (the last matching rule wins)."""
        rules: dict[str, MetricRule] = {}
        for rule in self.metrics:
            if rule.matches(task_name):
                rules[rule.metric] = rule
        return list(rules.values()) or [MetricRule(task_name, headline)]

    def tolerance_for(self, rule: MetricRule) -> Tolerance:
        return rule.tolerance or self.tolerance

    def validated(self) -> GateConfig:
        _check(0 < self.alpha < 1, f"alpha must lie in (0, 1), got {self.alpha}")
        _check(0 < self.power < 1, f"power must lie in (0, 1), got {self.power}")
        _check(self.min_samples >= 1, f"min_samples must be ≥ 1, got {self.min_samples}")
        _check(self.resamples >= 100, f"resamples must be ≥ 100, got {self.resamples}")
        _check(self.inconclusive in INCONCLUSIVE_POLICIES,
               f"inconclusive must be one of {', '.join(INCONCLUSIVE_POLICIES)}, got {self.inconclusive!r}")
        bad = [b for b in self.by if b not in GROUPINGS]
        _check(not bad, f"by: unknown grouping {bad[0] if bad else ''!r} (choose from {', '.join(GROUPINGS)})")
        for tol in [self.tolerance, *(r.tolerance for r in self.metrics if r.tolerance)]:
            _check(math.isfinite(tol.absolute) and tol.absolute >= 0 and math.isfinite(tol.relative)
                   and tol.relative >= 0, f"tolerances must be finite and ≥ 0, got {tol}")
        return self


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"gate config: {message}")


def load_config(path: Path | None) -> GateConfig:
    """The config file's settings (defaults without one); a bad key or value names the file."""
    if path is None:
        return GateConfig()
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--config {path}: not readable TOML ({exc})") from None
    gate = data.get("gate", {})
    if not isinstance(gate, dict) or set(data) - {"gate"}:
        raise ConfigError(f"--config {path}: expected one [gate] table (found: {', '.join(data) or 'nothing'})")
    try:
        return _from_table(gate, path.parent)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--config {path}: {exc}") from None


def _from_table(gate: Mapping[str, Any], base: Path) -> GateConfig:
    unknown = set(gate) - _GATE_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) in [gate]: {', '.join(sorted(unknown))} (known: {', '.join(sorted(_GATE_KEYS))})")
    default = GateConfig()
    tolerance = Tolerance(_number(gate, "tolerance", default.tolerance.absolute),
                          _number(gate, "relative_tolerance", default.tolerance.relative))
    by = gate.get("by", list(default.by))
    noise = gate.get("noise_floor")
    return GateConfig(
        tolerance=tolerance,
        alpha=_number(gate, "alpha", default.alpha),
        power=_number(gate, "power", default.power),
        min_samples=int(_number(gate, "min_samples", default.min_samples)),
        inconclusive=str(gate.get("inconclusive", default.inconclusive)),
        by=tuple(by) if isinstance(by, list) else (str(by),),
        resamples=int(_number(gate, "resamples", default.resamples)),
        seed=int(_number(gate, "seed", default.seed)),
        noise_floor=(base / str(noise)) if noise else None,
        metrics=tuple(_metric_rule(m, i) for i, m in enumerate(gate.get("metric", []))),
    )


def _metric_rule(table: Any, index: int) -> MetricRule:
    where = f"[[gate.metric]] #{index + 1}"
    if not isinstance(table, dict) or "metric" not in table:
        raise ValueError(f"{where}: needs a 'metric' key")
    unknown = set(table) - _METRIC_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    tolerance = None
    if "tolerance" in table or "relative_tolerance" in table:
        tolerance = Tolerance(_number(table, "tolerance", 0.0), _number(table, "relative_tolerance", 0.0))
    return MetricRule(str(table.get("task", "*")), str(table["metric"]), tolerance)


def _number(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {value!r}")
    return float(value)


def with_overrides(config: GateConfig, **overrides: Any) -> GateConfig:
    """The config with the command line's flags (None: not given) applied."""
    given = {k: v for k, v in overrides.items() if v is not None}
    tol = config.tolerance
    if "tolerance" in given or "relative_tolerance" in given:
        tol = Tolerance(given.pop("tolerance", tol.absolute), given.pop("relative_tolerance", tol.relative))
    if "metrics" in given:
        given["metrics"] = tuple(_rule_from_flag(m) for m in given["metrics"]) or config.metrics
    if "by" in given:
        given["by"] = tuple(given["by"]) or config.by
    return replace(config, tolerance=tol, **given).validated()


def _rule_from_flag(text: str) -> MetricRule:
    """`--metric acc` (every task) or `--metric mmlu_gen:acc`."""
    task, colon, metric = text.rpartition(":")
    if not metric:
        raise ConfigError(f"--metric {text!r}: expected METRIC or TASK:METRIC")
    return MetricRule(task if colon else "*", metric)

