"""`evalkit sweep FILE`: a grid of models x tasks x task-parameter sets from a TOML file, each
cell an ordinary run (one log per (model, task), resumed when run again), optionally on Ray.

    models = ["hf:smollm2", "gemma3-270m"]
    tasks = ["mmlu", "race"]
    limit = 5                        # optional: limit, num_fewshot, seed, output_dir
    task_params = [{ "mmlu.subjects" = "anatomy" }, { "mmlu.subjects" = "astronomy" }]
    [executor]                       # optional; without it each model runs in this process
    kind = "ray"                     # address, workers, gpus_per_worker, chunk_size
    workers = 2

Every cell's spec and flags are checked before the first model loads; a line per finished
cell shows the grid's progress, and a table of every cell ends the run.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomllib

from evalkit.errors import ConfigError
from evalkit.executors.config import RayOptions

KEYS = {"models", "tasks", "limit", "num_fewshot", "seed", "output_dir", "task_params", "executor"}
EXECUTOR_KEYS = {"kind", "address", "workers", "gpus_per_worker", "chunk_size"}


def read_sweep(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the sweep file ({exc})") from None
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(KEYS))})")
    for key in ("models", "tasks"):
        if not isinstance(data.get(key), list) or not data[key] or not all(isinstance(x, str) for x in data[key]):
            raise ConfigError(f"{path}: {key!r} must be a non-empty list of strings")
    return data


def ray_options(path: Path, table: Any) -> RayOptions | None:
    if table is None:
        return None
    if not isinstance(table, Mapping) or table.get("kind", "ray") not in ("ray", "local"):
        raise ConfigError(f"{path}: [executor] must be a table with kind = \"ray\" or \"local\"")
    unknown = sorted(set(table) - EXECUTOR_KEYS)
    if unknown:
        raise ConfigError(f"{path}: [executor]: unknown key(s) {', '.join(unknown)}")
    if table.get("kind", "ray") == "local":
        return None
    return RayOptions(address=str(table.get("address", "local")), workers=int(table.get("workers", 2)),
                      gpus_per_worker=float(table.get("gpus_per_worker", 0)),
                      chunk_size=table.get("chunk_size")).check()


def sweep_configs(path: Path, data_dir: Path | None, cache_dir: Path | None, progress: bool) -> list[Any]:
    """One RunConfig per (model, task-parameter set), every spec checked (nothing loads)."""
    from evalkit.models import parse_model_spec
    from evalkit.params import split_assignments
    from evalkit.plan import RunConfig

    data = read_sweep(path)
    tasks = tuple(data["tasks"])
    param_sets = data.get("task_params", [{}])
    if not isinstance(param_sets, list) or not all(isinstance(p, Mapping) for p in param_sets):
        raise ConfigError(f"{path}: 'task_params' must be a list of tables of KEY or TASK.KEY = value")
    ray = ray_options(path, data.get("executor"))
    configs = []
    for model in data["models"]:
        parse_model_spec(model)
        for params in param_sets or [{}]:
            assignments = [f"{k}={'|'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in params.items()]
            configs.append(RunConfig(
                model=model, tasks=tasks, task_params=split_assignments(assignments, tasks, flag=f"{path}:"),
                limit=data.get("limit"), num_fewshot=data.get("num_fewshot"), seed=int(data.get("seed", 0)),
                output_dir=Path(data.get("output_dir", "runs")), data_dir=data_dir, cache_dir=cache_dir,
                progress=progress, ray=ray))
    return configs


class SweepCommand:
    help = "run a grid of models x tasks x task parameters from a TOML file (resumable, optionally on Ray)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", type=Path, metavar="SWEEP.toml")
        parser.add_argument("--data-dir", help="benchmark data folder (default: $EVALKIT_DATA_DIR)")
        parser.add_argument("--cache-dir", type=Path, help="response cache folder")
        parser.add_argument("--no-progress", action="store_true", help="no per-task progress bars")

    def run(self, args: argparse.Namespace) -> int:
        from evalkit.data import resolve_data_dir
        from evalkit.runner import run

        configs = sweep_configs(args.file, resolve_data_dir(args.data_dir), args.cache_dir, not args.no_progress)
        rows, n_cells = [], len(configs) * len(configs[0].tasks)
        for config in configs:
            for outcome in asyncio.run(run(config)):
                rows.append((config.model, outcome.task, outcome.n_samples, outcome.n_errors, outcome.log_path))
                print(f"[{len(rows)}/{n_cells}] {config.model} {outcome.task}: {outcome.n_samples} samples, "
                      f"{outcome.n_errors} errors, {outcome.seconds:.1f}s; log: {outcome.log_path}", flush=True)
        width = max(len(r[0]) for r in rows)
        print("\nmodel".ljust(width + 1) + "  task  samples  errors  log")
        for model, task, n, errors, log in rows:
            print(f"{model.ljust(width)}  {task}  {n}  {errors}  {log}")
        return 1 if any(r[3] for r in rows) else 0


SWEEP = SweepCommand()
