"""Aggregated results of one task: metrics overall, per subtask and per category."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evalkit.types import MetricValue

#: metrics for one group: metric name -> value
GroupMetrics = dict[str, MetricValue]


@dataclass(frozen=True)
class TaskResults:
    """Aggregates of one task: overall, per subtask and per category."""

    overall: Mapping[str, MetricValue]
    subtasks: Mapping[str, Mapping[str, MetricValue]] = field(default_factory=dict)
    categories: Mapping[str, Mapping[str, MetricValue]] = field(default_factory=dict)
    #: extra structured results (e.g. reliability-diagram bins)
    details: Mapping[str, Any] = field(default_factory=dict)

    def with_overall(self, extra: Mapping[str, MetricValue]) -> TaskResults:
        """A copy with more overall metrics (results are never changed in place)."""
        return TaskResults({**self.overall, **extra}, self.subtasks, self.categories, self.details)

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": _group_to_dict(self.overall),
            "subtasks": {k: _group_to_dict(v) for k, v in sorted(self.subtasks.items())},
            "categories": {k: _group_to_dict(v) for k, v in sorted(self.categories.items())},
            "details": dict(self.details),
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> TaskResults:
        return TaskResults(
            overall=_group_from_dict(data.get("overall") or {}),
            subtasks={k: _group_from_dict(v) for k, v in (data.get("subtasks") or {}).items()},
            categories={k: _group_from_dict(v) for k, v in (data.get("categories") or {}).items()},
            details=dict(data.get("details") or {}),
        )


def _group_to_dict(group: Mapping[str, MetricValue]) -> dict[str, Any]:
    return {name: m.to_dict() for name, m in group.items()}


def _group_from_dict(group: Mapping[str, Any]) -> dict[str, MetricValue]:
    return {name: MetricValue.from_dict(name, m) for name, m in group.items()}
