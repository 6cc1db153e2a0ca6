"""A study: items built from generation logs of one task, annotator tokens, assignments.

Everything that identifies a model (its name, the log's path and identity) stays in the store's
`meta` and in item payloads' `models`, which the pages never render; what a page shows is the
question and the answers in the slot's recorded order.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError, RunLogError
from evalkit.human.assign import annotator_queue, balanced_assignment, ranking_rounds
from evalkit.human.store import ADMIN, ANNOTATOR, VoteStore
from evalkit.log import read_log
from evalkit.log.io import RunLog
from evalkit.log.records import SampleRecord

DESIGNS = ("pairwise", "likert", "ranking")


@dataclass(frozen=True)
class StudyConfig:
    design: str = "pairwise"
    criteria: tuple[str, ...] = ("overall",)
    #: Likert levels: 5 (1-5) or 7 (1-7)
    scale: int = 5
    per_item: int = 2
    turns: tuple[int, ...] = (1,)
    limit: int | None = None
    #: share of each annotator's queue repeated as attention checks
    attention: float = 0.0
    #: ranking: systems per round
    per_round: int = 5
    seed: int = 0
    #: collapse long answers into equal-height scroll boxes (hides length cues)
    equal_height: bool = True

    def check(self) -> None:
        if self.design not in DESIGNS:
            raise ConfigError(f"--design must be one of {', '.join(DESIGNS)}, got {self.design!r}")
        if self.scale not in (5, 7):
            raise ConfigError(f"--scale must be 5 or 7, got {self.scale}")
        if self.per_item < 1:
            raise ConfigError(f"--per-item must be at least 1, got {self.per_item}")
        if not 0 <= self.attention < 1:
            raise ConfigError(f"--attention must be in [0, 1), got {self.attention}")
        if not self.criteria or any(not c.strip() for c in self.criteria):
            raise ConfigError("--criteria needs at least one non-empty name")
        if any(t < 1 for t in self.turns):
            raise ConfigError(f"--turns must be 1 or more, got {list(self.turns)}")


def model_name(log: RunLog) -> str:
    """The name results use (the judge stage's rule, so human and judge labels match)."""
    return str(log.header.model.get("name") or log.header.model_spec)


def read_runs(paths: Sequence[Path], design: str) -> list[RunLog]:
    logs = []
    for path in paths:
        try:
            logs.append(read_log(path))
        except RunLogError as exc:
            raise ConfigError(str(exc)) from None
    tasks = {log.header.task_name for log in logs}
    if len(tasks) > 1:
        raise ConfigError(f"the runs are of different tasks ({', '.join(sorted(tasks))}): give logs of one task")
    names = [model_name(log) for log in logs]
    if len(set(names)) < len(names):
        raise ConfigError(f"two runs are of the same model ({', '.join(names)}): give one log per model")
    need = 1 if design == "likert" else 2
    if len(logs) < need:
        raise ConfigError(f"the {design} design needs at least {need} run logs, got {len(logs)}")
    return logs


def _turn_texts(record: SampleRecord, turn: int) -> list[str]:
    return [r.text or "" for r in record.responses[:turn]]


def _questions(record: SampleRecord) -> list[str]:
    turns = record.metadata.get("turns") or [str(record.input)]
    return [str(q) for q in turns]


def _common_ids(logs: Sequence[RunLog], config: StudyConfig) -> list[str]:
    """Samples every log answered without error, in the first log's order."""
    usable = [log.finished_ids for log in logs]
    ids = [sid for sid in logs[0].samples if all(sid in u for u in usable)]
    return ids[: config.limit] if config.limit else ids


def build_items(logs: Sequence[RunLog], config: StudyConfig) -> dict[str, dict[str, Any]]:
    """item id -> payload: the question turns, the models and their answers up to the turn."""
    names = [model_name(log) for log in logs]
    groups: list[tuple[int, ...]]
    if config.design == "pairwise":
        groups = list(itertools.combinations(range(len(logs)), 2))
    elif config.design == "likert":
        groups = [(i,) for i in range(len(logs))]
    else:
        by_name = {n: i for i, n in enumerate(names)}
        groups = [tuple(by_name[n] for n in r) for r in ranking_rounds(names, config.per_round, config.seed)]
    items: dict[str, dict[str, Any]] = {}
    for sid in _common_ids(logs, config):
        first = logs[0].samples[sid]
        for turn in config.turns:
            if len(first.responses) < turn:
                continue
            for g, group in enumerate(groups):
                items[f"{sid}/t{turn}/g{g}"] = {
                    "question": sid, "turn": turn, "category": first.subtask, "questions": _questions(first)[:turn],
                    "models": [names[i] for i in group],
                    "answers": [_turn_texts(logs[i].samples[sid], turn) for i in group],
                }
    if not items:
        raise ConfigError("the runs have no answered sample in common (or none with the asked turns)")
    return items


def create_study(store_path: Path, run_paths: Sequence[Path], annotators: Sequence[str],
                 config: StudyConfig) -> VoteStore:
    """A new store with the items, one token per annotator plus an admin token, and the queues."""
    config.check()
    if not annotators or len(set(annotators)) < len(annotators) or ADMIN in annotators:
        raise ConfigError("--annotators needs distinct names (and not 'admin')")
    if config.per_item > len(annotators):
        raise ConfigError(f"--per-item {config.per_item} needs at least that many annotators, got {len(annotators)}")
    logs = read_runs(run_paths, config.design)
    items = build_items(logs, config)
    if store_path.exists():
        raise ConfigError(f"{store_path}: already exists (serve it again without run logs to resume)")
    store = VoteStore(store_path, create=True)
    store.set_meta({"config": asdict(config), "task": logs[0].header.task_name,
                    "runs": [{"path": str(log.path), "identity": log.header.identity, "model": model_name(log)}
                             for log in logs]})
    store.add_items(items)
    store.add_annotator(secrets.token_urlsafe(16), ADMIN, ADMIN)
    for name in annotators:
        store.add_annotator(secrets.token_urlsafe(16), name, ANNOTATOR)
    queues = balanced_assignment(list(items), list(annotators), config.per_item, config.seed)
    sizes = {k: len(v["models"]) for k, v in items.items()}
    for name in annotators:
        store.add_assignments(annotator_queue(name, queues[name], sizes, config.seed, config.attention))
    return store


def study_config(store: VoteStore) -> StudyConfig:
    raw: Mapping[str, Any] = store.meta().get("config") or {}
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return StudyConfig(**fields)


def admin_token(store: VoteStore) -> str:
    row = store.db.execute("SELECT token FROM annotators WHERE role = ?", (ADMIN,)).fetchone()
    return str(row[0])
