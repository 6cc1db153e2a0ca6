"""Typed task parameters: `-T key=value` on the command line, checked before any model loads.

A task registers the parameters its factory takes. Values arrive as strings and are parsed
here, so a bad value is a one-line error naming the accepted parameters. List values are
written `-T key=a|b` or by repeating the key (`-T key=a -T key=b`); the `|` keeps them clear
of the comma that separates `--tasks`. A parameter whose default is `None` means "auto": the
task decides (e.g. HumanEval's sampling temperature follows `n`, its prompt format follows
whether the model has a chat template).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalkit.errors import ConfigError

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
AUTO = "auto"


@dataclass(frozen=True)
class ModelFacts:
    """What is known about a model before it loads (for parameters that follow the model)."""

    chat_template: bool = False
    #: the backend's capabilities, when they are known without loading it
    capabilities: frozenset[str] | None = None
    #: why `chat_template` has its value, for the run log
    chat_reason: str = "no model known: completion format"


NO_MODEL = ModelFacts()


@dataclass(frozen=True)
class Param:
    """One parameter a task factory takes (the factory's keyword argument of that name)."""

    name: str
    kind: type  # int, float, str or bool
    default: Any
    help: str = ""
    choices: tuple[str, ...] = ()
    multiple: bool = False
    minimum: float | None = None
    maximum: float | None = None
    #: for `None` ("auto") defaults: how the value follows from the model
    auto: Callable[[ModelFacts], Any] | None = None

    def describe(self) -> str:
        kind = f"list of {self.kind.__name__}" if self.multiple else self.kind.__name__
        default = AUTO if self.default is None else _show(self.default)
        shown = "|".join(self.choices) if len(self.choices) <= 8 else f"{len(self.choices)} names"
        extra = f"; one of {shown}" if self.choices else ""
        return f"{self.name} ({kind}, default {default}{extra}){': ' + self.help if self.help else ''}"

    def parse(self, raw: Sequence[str], task: str) -> Any:
        if self.multiple:
            return tuple(self._one(part, task) for text in raw for part in text.split("|") if part != "")
        if len(raw) > 1:
            raise ConfigError(f"task {task!r}: -T {self.name} given {len(raw)} times; it takes one value")
        if self.default is None and raw[0].strip().lower() == AUTO:
            return None
        return self._one(raw[0], task)

    def _one(self, text: str, task: str) -> Any:
        value = _convert(self.kind, text.strip())
        if value is None:
            raise ConfigError(f"task {task!r}: -T {self.name}={text!r} is not {_article(self.kind)}")
        if self.choices and str(value) not in self.choices:
            close = difflib.get_close_matches(str(value), self.choices, n=3, cutoff=0.6)
            hint = (f"did you mean {' or '.join(close)}?" if close else
                    f"expected one of {', '.join(self.choices)}" if len(self.choices) <= 8 else
                    "see `evalkit list tasks --params`")
            raise ConfigError(f"task {task!r}: -T {self.name}={text!r} is not a known value; {hint}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"task {task!r}: -T {self.name}={text!r} must be a finite number")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"task {task!r}: -T {self.name}={text!r} must be at least {_show(self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"task {task!r}: -T {self.name}={text!r} must be at most {_show(self.maximum)}")
        return value


def resolve(task: str, params: Sequence[Param], given: Mapping[str, Sequence[str]],
            facts: ModelFacts = NO_MODEL) -> dict[str, Any]:
    """Every parameter's value (given, else default, else from the model), checked."""
    known = {p.name: p for p in params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise ConfigError(f"task {task!r}: unknown parameter {unknown[0]!r} (accepted: {accepted}; "
                          "see `evalkit list tasks --params`)")
    values: dict[str, Any] = {}
    for param in params:
        value = param.parse(given[param.name], task) if param.name in given else param.default
        if value is None and param.auto is not None:
            value = param.auto(facts)
        values[param.name] = value
    return values


def split_assignments(items: Sequence[str], tasks: Sequence[str], flag: str = "-T"
                      ) -> dict[str, dict[str, tuple[str, ...]]]:
    """`-T key=v` (every task) and `-T task.key=v` (one task) as {task or "": {key: values}}."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ConfigError(f"{flag} {item!r}: expected key=value or task.key=value")
        scope, dot, name = key.rpartition(".")
        if dot and scope not in tasks:
            raise ConfigError(f"{flag} {item!r}: {scope!r} is not one of --tasks ({', '.join(tasks)})")
        bucket = out.setdefault(scope if dot else "", {})
        bucket[name] = (*bucket.get(name, ()), value)
    return out


def for_task(task: str, accepted: Sequence[str], assignments: Mapping[str, Mapping[str, tuple[str, ...]]],
             *, only_task: bool = False) -> dict[str, tuple[str, ...]]:
    """The raw values one task receives: global keys it accepts (all of them when it is the
    run's only task, so that an unknown key is reported by the task), then its own keys."""
    given = {k: v for k, v in assignments.get("", {}).items() if only_task or k in accepted}
    given.update(assignments.get(task, {}))
    return given


def check_global_keys(assignments: Mapping[str, Mapping[str, tuple[str, ...]]],
                      accepted_by_task: Mapping[str, Sequence[str]]) -> None:
    """A `-T key=v` without a task prefix must be taken by at least one of the tasks (with one
    task, the task's own check names the parameters it accepts)."""
    if len(accepted_by_task) == 1:
        return
    for key in assignments.get("", {}):
        if not any(key in accepted for accepted in accepted_by_task.values()):
            tasks = ", ".join(accepted_by_task)
            every = sorted({name for accepted in accepted_by_task.values() for name in accepted})
            raise ConfigError(f"-T {key}: no task in --tasks ({tasks}) takes parameter {key!r} "
                              f"(they take: {', '.join(every) or 'none'})")


def _convert(kind: type, text: str) -> Any:
    try:
        if kind is bool:
            low = text.lower()
            return True if low in _TRUE else False if low in _FALSE else None
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        return text
    except ValueError:
        return None


def _article(kind: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false"}.get(kind, "a string")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "|".join(map(str, value)) or "(empty)"
    return str(value)
