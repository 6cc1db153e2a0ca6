"""Finding and loading lm-eval tasks through lm-eval's own `TaskManager` (its YAMLs, `!function`
hooks, filters and metrics), with evalkit's error form: one line naming what is wrong."""

from __future__ import annotations

import difflib
import functools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, DataError

LMEVAL_VERSION = "0.4.13"
INSTALL_HINT = "lm-eval tasks need the lmeval extra: pip install 'evalkit[lmeval]'"


@dataclass(frozen=True)
class Loaded:
    """lm-eval's loaded task or group: leaf tasks by name (in lm-eval's order), and groups."""

    name: str
    tasks: dict[str, Any]
    groups: dict[str, Any]

    @property
    def is_group(self) -> bool:
        return self.name in self.groups


def task_manager(include_path: str = "", name: str = "") -> Any:
    """The TaskManager that knows `name`: with an include path, first one that indexes only the
    user's folder (lm-eval's own 228 folders take seconds to index), else the full index."""
    if include_path and name:
        own = _task_manager(include_path, with_defaults=False)
        if name in own.task_index or own.match_tasks([name]):
            return own
    return _task_manager(include_path, with_defaults=True)


@functools.lru_cache(maxsize=4)
def _task_manager(include_path: str, with_defaults: bool) -> Any:
    """One TaskManager per include path per process."""
    if include_path and not Path(include_path).is_dir():
        raise ConfigError(f"-T include_path={include_path}: no such folder of lm-eval YAML tasks")
    try:
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    lm_eval_log = logging.getLogger("lm_eval")
    if lm_eval_log.level == logging.NOTSET:  # its per-task notes ("using default aggregation") are noise here
        lm_eval_log.setLevel(logging.ERROR)
    return TaskManager(include_path=include_path or None, include_defaults=with_defaults)


def check_name(name: str, include_path: str = "") -> None:
    """An unknown name fails in one line, with the closest names lm-eval knows."""
    manager = task_manager(include_path, name)
    if name in manager.task_index or manager.match_tasks([name]):
        return
    known: list[str] = list(manager.all_tasks)
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    where = f" (with -T include_path={include_path})" if include_path else ""
    raise ConfigError(f"unknown lm-eval task {name!r}{where}{hint} "
                      f"({len(known)} lm-eval tasks, groups and tags; `lm_eval ls tasks` lists them)")


def load_tasks(name: str, include_path: str = "") -> Loaded:
    """lm-eval's tasks for `name`, their datasets loaded; a dataset that cannot be loaded is one
    line that says which one and how to provide it."""
    check_name(name, include_path)
    manager = task_manager(include_path, name)
    try:
        try:
            result = manager.load([name])
        except Exception:
            full = _task_manager(include_path, with_defaults=True)
            if manager is full:
                raise
            manager = full  # the user's group names some of lm-eval's own tasks
            result = manager.load([name])
    except (ConnectionError, FileNotFoundError, OSError, ValueError) as exc:
        raise DataError(_dataset_message(manager, name, exc, include_path)) from None
    except Exception as exc:  # datasets' own errors (DatasetNotFoundError, ...) have no common base
        if type(exc).__module__.startswith(("datasets", "huggingface_hub")):
            raise DataError(_dataset_message(manager, name, exc, include_path)) from None
        raise
    return Loaded(name, dict(result["tasks"]), dict(result["groups"]))


def _dataset_message(manager: Any, name: str, exc: BaseException, include_path: str) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    dataset = _dataset_named(manager, first) or _first_dataset(manager, name)
    where = f"dataset {dataset!r}" if dataset else "its dataset"
    return (f"lm-eval task {name!r}: {where} cannot be loaded ({type(exc).__name__}: {first}). "
            "Provide it: run once with network access so `datasets` caches it (HF_DATASETS_CACHE), "
            "or write a YAML task with `dataset_path: json` and `dataset_kwargs: {data_files: ...}` "
            f"pointing at local files and pass -T include_path=DIR{'' if not include_path else ' (given: ' + include_path + ')'}")


def _dataset_named(manager: Any, message: str) -> str:
    """The dataset an error message quotes (datasets writes "Couldn't reach 'owner/name' ...")."""
    quoted = re.findall(r"'([^']+)'", message)
    paths = {str(e.cfg.get("dataset_path")): e.cfg for e in manager.task_index.values() if e.cfg}
    for q in quoted:
        if q in paths:
            cfg = paths[q]
            return f"{q} ({cfg['dataset_name']})" if cfg.get("dataset_name") else q
    return quoted[0] if quoted else ""


def _first_dataset(manager: Any, name: str) -> str:
    entry = manager.task_index.get(name)
    cfg = getattr(entry, "cfg", None) or {}
    return str(cfg.get("dataset_path") or "")


def jsonable(value: Any) -> Any:
    """lm-eval's values as plain JSON (its own serialiser for what JSON cannot hold)."""
    from lm_eval.utils import handle_non_serializable

    return json.loads(json.dumps(value, default=handle_non_serializable, ensure_ascii=False))
