"""Stored baselines: `evalkit baseline save RUN --name NAME` and finding one for `--baseline`.

A baseline is a directory `<baselines dir>/<NAME>/` holding the run's logs and a
`manifest.json` with each log's sha256 (checked when the baseline is read, so an edited
baseline is refused rather than silently compared). Two forms:

- `full`: the logs as written by `evalkit run` (prompts, responses, scores);
- `compact` (Git-friendly): the same header and summary, and per sample only its id, subtask,
  numeric score fields and error flag; no prompt, no benchmark text, no model output. The gate
  needs nothing more, and a benchmark's license may forbid committing its questions.

`--baseline X` is a run log, a directory of logs, a baseline directory, or the NAME of a
baseline under the baselines dir (`--baselines-dir`, else $EVALKIT_BASELINES_DIR, else
./evalkit-baselines).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit import jsonl
from evalkit.errors import ConfigError, RunLogError
from evalkit.log.build import now
from evalkit.log.io import find_logs, read_log

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "evalkit.baseline"
DEFAULT_DIR = "evalkit-baselines"
FORMS = ("full", "compact")


def baselines_dir(given: Path | None) -> Path:
    return given or Path(os.environ.get("EVALKIT_BASELINES_DIR") or DEFAULT_DIR)


def save_baseline(run: Path, name: str, root: Path, *, compact: bool, overwrite: bool = False) -> Path:
    """Copy (or compact) every log of `run` into `root/name` with a manifest; returns the dir."""
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"--name {name!r}: a baseline name is one path component, not starting with '.'")
    logs = find_logs(run)
    if not logs:
        raise RunLogError(f"{run}: no run logs (*.jsonl) found")
    target = root / name
    if target.exists() and not overwrite:
        raise ConfigError(f"{target}: baseline {name!r} exists (pass --overwrite to replace it)")
    entries = [(log_path, read_log(log_path)) for log_path in logs]  # every log valid before writing
    tmp = root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    listed = []
    for log_path, log in entries:
        rel = _relative_name(run, log_path)
        out = tmp / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if compact:
            out.write_bytes(compact_log_bytes(log_path))
        else:
            shutil.copyfile(log_path, out)
        listed.append({"path": rel.as_posix(), "sha256": _sha256(out), "task": log.header.task_name,
                       "model": log.header.model_spec, "identity": log.header.identity,
                       "n_samples": len(log.samples)})
    manifest = {"schema": MANIFEST_SCHEMA, "version": 1, "name": name, "form": FORMS[compact],
                "created_at": now(), "source": str(run), "logs": listed}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _relative_name(run: Path, log_path: Path) -> Path:
    if run.is_file():
        return Path(log_path.parent.name) / log_path.name
    return log_path.relative_to(run)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compact_log_bytes(path: Path) -> bytes:
    """The log with every sample record reduced to its scores (latest record per sample)."""
    log = read_log(path)
    lines = [jsonl.dumps_line({**log.header.to_json(), "compact": True})]
    for record in log.samples.values():
        out: dict[str, Any] = {"type": "sample", "id": record.id, "subtask": record.subtask,
                               "score": None, "error": "error" if record.error else None}
        if record.score is not None:
            out["score"] = {"value": record.score.value, "extras": _numeric(record.score.extras)}
        if record.source_id:
            out["source_id"] = record.source_id
        lines.append(jsonl.dumps_line(out))
    if log.summary is not None:
        lines.append(jsonl.dumps_line(log.summary.to_json()))
    return b"".join(lines)


def _numeric(extras: Mapping[str, Any]) -> dict[str, Any]:
    """Only numbers (e.g. pass@k's n and c): nothing a benchmark or a model wrote, and not the
    answer key (`gold`)."""
    return {k: v for k, v in extras.items() if k != "gold"
            and (isinstance(v, bool | int) or (isinstance(v, float) and math.isfinite(v)))}


def resolve_logs(spec: str, root: Path, *, flag: str) -> list[Path]:
    """The logs `--baseline/--candidate spec` names (see the module doc); checks manifests."""
    path = Path(spec)
    if not path.exists() and "/" not in spec and (root / spec).is_dir():
        path = root / spec
    if not path.exists():
        raise ConfigError(f"{flag} {spec}: no such run log, directory or baseline (baselines are looked up in {root})")
    if path.is_dir() and (path / MANIFEST).is_file():
        return _manifest_logs(path)
    logs = find_logs(path)
    if not logs:
        raise ConfigError(f"{flag} {spec}: no run logs (*.jsonl) in {path}")
    return logs


def _manifest_logs(directory: Path) -> list[Path]:
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        entries = [(str(e["path"]), str(e["sha256"])) for e in manifest["logs"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunLogError(f"{manifest_path}: not a baseline manifest ({type(exc).__name__}: {exc})") from None
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise RunLogError(f"{manifest_path}: not a baseline manifest (schema {manifest.get('schema')!r})")
    logs = []
    for rel, digest in entries:
        log_path = directory / rel
        if not log_path.is_file():
            raise RunLogError(f"{manifest_path}: lists {rel}, which is missing")
        if _sha256(log_path) != digest:
            raise RunLogError(f"{log_path}: changed since the baseline was saved (sha256 differs from {MANIFEST})")
        logs.append(log_path)
    return logs
