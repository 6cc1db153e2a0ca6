"""One typed registry for tasks, backends, judges and metrics.

Entries are registered by decorators in the modules that define them, or as lazy
"module:attribute" strings so that heavy modules are imported only when used.
Third-party packages add their own through the ``evalkit.plugins`` entry-point group:
each entry names a module that registers things when imported.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from evalkit.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.backends.spec import BackendInfo
    from evalkit.log.io import LogContent
    from evalkit.task import TaskEntry

T = TypeVar("T")
log = logging.getLogger(__name__)

PLUGIN_GROUP = "evalkit.plugins"


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        #: name prefixes resolved by a plugin (`lmeval:<task>`): prefix -> callable(name) -> T
        self._prefixes: dict[str, Callable[[str], T] | str] = {}

    def register(self, name: str, obj: T | str, *, replace: bool = False) -> None:
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            self.register(name, obj)
            return obj

        return wrap

    def register_prefix(self, prefix: str, resolver: Callable[[str], T] | str) -> None:
        """Names starting with `prefix` are built on demand by `resolver(name)` (a callable or
        a lazy "module:attribute"): for open-ended families such as lm-eval's task library."""
        self._prefixes[prefix] = resolver

    def _resolve_prefix(self, name: str) -> T | None:
        for prefix, resolver in self._prefixes.items():
            if name.startswith(prefix):
                found: Callable[[str], T] = (_import_object(resolver) if isinstance(resolver, str)  # type: ignore[assignment]
                                             else resolver)
                return found(name)
        return None

    def get(self, name: str) -> T:
        load_plugins()
        if name not in self._entries:
            resolved = self._resolve_prefix(name)
            if resolved is not None:
                return resolved
            raise ConfigError(unknown_name_message(self.kind, name, self.names()))
        entry = self._entries[name]
        if isinstance(entry, str):
            loaded: T = _import_object(entry)  # type: ignore[assignment]
            self._entries[name] = loaded
            return loaded
        return entry

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = "" if close else f" (run `evalkit list {kind}s` to see all {len(known)})"
    return f"unknown {kind} {name!r}{hint}{listing}"


def _import_object(path: str) -> object:
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


_plugins_loaded = False


def load_plugins() -> None:
    """Import every module named in the plugin entry-point group (once)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.value.startswith("evalkit."):
            ep.load()  # our own plugins: a failure is a bug and must show
            continue
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must not break the CLI
            log.warning("plugin %s (%s) failed to load: %s", ep.name, ep.value, exc)


# The registries (their value types are imported for type checking only, so this module
# imports nothing that defines tasks or backends).
tasks: Registry[TaskEntry] = Registry("task")
backends: Registry[BackendInfo] = Registry("backend")
judges: Registry[object] = Registry("judge")
metrics: Registry[object] = Registry("metric")
#: task wrappers named in task lists, `task@name(k=v)` (evalkit.perturb: perturbations, formats)
perturbations: Registry[object] = Registry("perturbation")
#: CLI subcommands added by plugins (e.g. `evalkit leaderboard` from evalkit.reports)
commands: Registry[object] = Registry("command")
commands.register("robustness", "evalkit.stages.robustness_cli:ROBUSTNESS")
commands.register("format-spread", "evalkit.stages.robustness_cli:FORMAT_SPREAD")
commands.register("sweep", "evalkit.executors.sweep:SWEEP")
#: options a plugin adds to `evalkit run` (e.g. `--judge SPEC`: run, then judge the logs); each has
#: add_arguments(parser), prepare(args, config) -> config (before any model loads) and
#: after_run(args, config, outcomes) -> exit code (see evalkit.cli.RunExtension)
run_extensions: list[object] = []
# lm-eval interoperability (evalkit.lmeval; lm_eval itself is imported only when used)
commands.register("import-lmeval", "evalkit.lmeval.cli:IMPORT_LMEVAL")
tasks.register_prefix("lmeval:", "evalkit.lmeval.tasks:task_entry_for")
#: `evalkit show RUN --format NAME` writers besides the built-in text/json: callable(path, args) -> str
show_formats: Registry[object] = Registry("show format")
show_formats.register("lmeval", "evalkit.lmeval.export:show_lmeval")
#: toxicity scorers (evalkit.toxicity): name -> factory(task parameters) -> ToxicityScorer
toxicity_scorers: Registry[object] = Registry("toxicity scorer")
#: `evalkit score` for stage logs: stage name -> callable(RunLog) -> TaskResults, registered
#: by the plugin whose stage wrote them (e.g. the judge re-reads its verdicts)
rescorers: Registry[object] = Registry("rescorer")

#: called with a run log's path once it is complete (written, resumed or re-scored), e.g. so
#: the reports plugin indexes it while the records are hot instead of at the first UI render;
#: the second argument is the content when the writer has it in memory (None: read the file)
log_finished_hooks: list[Callable[[Path, LogContent | None], None]] = []


def notify_log_finished(path: Path, content: LogContent | None = None) -> None:
    load_plugins()
    for hook in log_finished_hooks:
        try:
            hook(path, content)
        except Exception as exc:  # a plugin's side job must never fail the run
            log.warning("log hook %s failed on %s: %s", getattr(hook, "__qualname__", hook), path, exc)
