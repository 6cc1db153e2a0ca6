"""`evalkit score` on a judgment log: every verdict read again from the stored judge outputs
(text or first-token probabilities), no judge call; the log is rewritten in one rename."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from evalkit import registry
from evalkit.engine import EngineStats
from evalkit.judges.asking import reread
from evalkit.judges.stage import Contestant, JudgeSettings, JudgeStage, score_of, verdict_metadata
from evalkit.judges.templates import get_template
from evalkit.log.build import summary_record
from evalkit.log.io import LogWriter, RunLog
from evalkit.log.records import SampleRecord
from evalkit.results import TaskResults


def rescore_judgments(log: RunLog) -> TaskResults:
    config = log.header.task
    stage = JudgeStage(_settings(config))
    records = [_reread(record) for record in log.samples.values()]
    seed = int(config.get("seed") or 0)
    results = stage.aggregate(records, seed)
    tmp = log.path.with_name(log.path.name + ".rescore.tmp")
    with LogWriter(tmp) as writer:
        writer.append(log.header.to_json())
        for record in records:
            writer.append(record.to_json())
        writer.append(summary_record(results, records, 0.0, 0, EngineStats(), rescored=True).to_json())
    os.replace(tmp, log.path)
    return results


def _settings(config: Any) -> JudgeSettings:
    contestants = tuple(Contestant(label, str(name)) for label, name in (config.get("contestants") or {}).items())
    return JudgeSettings(str(config.get("protocol")), contestants, str(config.get("verdict", "text")),
                         seed=int(config.get("seed") or 0))


def _reread(record: SampleRecord) -> SampleRecord:
    template = get_template(str(record.derivation.get("template")))
    asked = reread(template, list(record.requests), list(record.responses))
    if asked is None:  # a failed request: left for `evalkit judge` to retry
        return record
    return dataclasses.replace(record, score=score_of(asked, record.derivation), error=asked.failure,
                               metadata=verdict_metadata(record.metadata, asked))


registry.rescorers.register("judge", rescore_judgments, replace=True)
