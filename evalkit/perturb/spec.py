"""The task-name syntax for wrappers: `task@name(key=value,...)@name2...`.

`--tasks 'mmlu,mmlu@typos(rate=0.1,seed=1),mmlu@option_shuffle'` names three tasks: the commas
inside parentheses belong to the wrapper's parameters, so the task list is split only at
depth 0. List values use `|`, as `-T` does. This module only parses; the wrappers are built by
`evalkit.perturb.wrap`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evalkit.errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class WrapperCall:
    """One `@name(k=v,...)` of a task name: the wrapper's name and its raw parameter values."""

    name: str
    given: tuple[tuple[str, str], ...] = ()

    def label(self) -> str:
        inside = ",".join(f"{k}={v}" for k, v in self.given)
        return f"{self.name}({inside})" if inside else self.name

    def raw(self) -> dict[str, list[str]]:
        return {k: [v] for k, v in self.given}


def split_task_list(text: str) -> tuple[str, ...]:
    """`--tasks` split at commas outside parentheses (blank items dropped)."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"--tasks {text!r}: unbalanced ')'")
        if char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth:
        raise ConfigError(f"--tasks {text!r}: unclosed '('")
    items.append("".join(current).strip())
    return tuple(item for item in items if item)


def parse_task_name(name: str) -> tuple[str, tuple[WrapperCall, ...]]:
    """(base task name, its wrappers in the order they apply)."""
    base, *parts = name.split("@")
    if not parts:
        return name, ()
    if not base.strip():
        raise ConfigError(f"task {name!r}: nothing before '@' (expected TASK@WRAPPER(...))")
    return base.strip(), tuple(_parse_call(part.strip(), name) for part in parts)


def canonical_name(base: str, calls: tuple[WrapperCall, ...]) -> str:
    return base + "".join(f"@{c.label()}" for c in calls)


def _parse_call(text: str, whole: str) -> WrapperCall:
    head, paren, rest = text.partition("(")
    head = head.strip()
    if not _NAME.match(head):
        raise ConfigError(f"task {whole!r}: {head!r} is not a wrapper name (expected @name or @name(key=value,...))")
    if not paren:
        return WrapperCall(head)
    if not rest.endswith(")") or ")" in rest[:-1]:
        raise ConfigError(f"task {whole!r}: @{head}(...) must end with one ')'")
    given: list[tuple[str, str]] = []
    for item in filter(None, (p.strip() for p in rest[:-1].split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"task {whole!r}: @{head}: {item!r} is not key=value")
        if any(k == key.strip() for k, _ in given):
            raise ConfigError(f"task {whole!r}: @{head}: {key.strip()!r} given twice")
        given.append((key.strip(), value.strip()))
    return WrapperCall(head, tuple(given))
