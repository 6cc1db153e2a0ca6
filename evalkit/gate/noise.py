"""The noise floor: how much a metric moves between two runs of the same configuration.

With sampled generation (temperature > 0) two runs of one model differ; a gate whose
tolerance ignores that flags noise. `evalkit gate calibrate` reads two runs of the baseline
configuration (two seeds, or the same seed run twice; `--rerun LOG` runs a log's configuration
twice itself) and records, per task and metric, the
observed run-to-run spread |mean(run 2) − mean(run 1)| on their shared samples; the gate adds
it to that metric's tolerance. Greedy, cached or replayed runs have a floor of 0.

File (JSON): {"schema": "evalkit.gate-noise", "version": 1,
              "floors": [{"task", "metric", "spread", "n", "runs": [mean 1, mean 2]}]}
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError
from evalkit.gate.compare import pair_runs
from evalkit.gate.config import GateConfig
from evalkit.log.build import now

NOISE_SCHEMA = "evalkit.gate-noise"


def calibrate(first: list[Path], second: list[Path], config: GateConfig) -> dict[str, Any]:
    """The noise-floor record of two runs of one configuration (overall group only)."""
    pairing = pair_runs(first, second, config)
    floors = []
    for scores in pairing.scores:
        if scores.group != "overall":
            continue
        one, two = float(scores.baseline.mean()), float(scores.candidate.mean())
        floors.append({"task": scores.task, "metric": scores.metric, "spread": abs(two - one),
                       "n": scores.n, "runs": [one, two]})
    return {"schema": NOISE_SCHEMA, "version": 1, "created_at": now(),
            "inputs": [t.to_dict() for t in pairing.tasks], "floors": floors}


def read_noise_floor(path: Path) -> dict[tuple[str, str], float]:
    """(task, metric) -> spread; a bad file is a ConfigError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"noise floor {path}: no such file (run `evalkit gate calibrate`)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"noise floor {path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != NOISE_SCHEMA:
        raise ConfigError(f"noise floor {path}: not an {NOISE_SCHEMA} file")
    out: dict[tuple[str, str], float] = {}
    for i, floor in enumerate(data.get("floors", [])):
        try:
            spread = float(floor["spread"])
            key = (str(floor["task"]), str(floor["metric"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"noise floor {path}: floors[{i}] needs task, metric and a numeric spread") from None
        if not math.isfinite(spread) or spread < 0:
            raise ConfigError(f"noise floor {path}: floors[{i}].spread must be finite and ≥ 0, got {spread}")
        out[key] = spread
    return out


def rerun_configs(log_path: Path, seeds: tuple[int, int], output_dir: Path) -> list[Any]:
    """Two RunConfigs that repeat a baseline log's configuration with the given seeds (the
    response cache is off, so each run really samples)."""
    from evalkit.data import resolve_data_dir
    from evalkit.log.io import read_log
    from evalkit.plan import RunConfig
    from evalkit.stages.rescore import _raw  # a logged parameter value as -T gives it

    header = read_log(log_path).header
    if header.roles:
        raise ConfigError(f"{log_path}: --rerun does not repeat runs with model roles; run it twice and "
                          "pass both runs to `evalkit gate calibrate`")
    params = header.task.get("parameters") or {}
    task = header.task_name
    raw = {task: {k: tuple(_raw(x) for x in v) if isinstance(v, list) else (_raw(v),) for k, v in params.items()}}
    config = header.config
    return [RunConfig(model=header.model_spec, tasks=(task,), model_args=dict(header.model.get("options") or {}),
                      task_params=raw, limit=config.get("limit"), num_fewshot=config.get("num_fewshot"),
                      seed=seed, output_dir=output_dir / f"seed-{seed}", data_dir=resolve_data_dir(None),
                      use_cache=False, progress=False)
            for seed in seeds]

