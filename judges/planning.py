"""From `evalkit judge` arguments to a stage, its inputs and its output, checking every input
before any model loads (one-line errors, exit 2)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.backends.facts import model_facts
from evalkit.backends.replay_formats import read_json_array
from evalkit.errors import ConfigError
from evalkit.judges.stage import Contestant, JudgeSettings, JudgeStage
from evalkit.log.io import RunLog, read_log
from evalkit.models import ModelSpec, parse_model_spec
from evalkit.stages.base import StageInput, StageOptions, joined_keys, stage_identity
from evalkit.types import CHOICE_LOGPROBS, GENERATE, stable_hash

#: about how long a judge template's own text is
TEMPLATE_CHARS = 1500


@dataclass
class JudgePlan:
    stage: JudgeStage
    inputs: list[StageInput]
    output: Path
    options: StageOptions
    notes: list[str] = field(default_factory=list)

    def dry_run_text(self) -> str:
        keys, joined, _ = joined_keys(self.inputs)
        units, unit_joined = self.stage.units(keys, joined)
        # a rough size: the answers shown plus the template text, at ~4 characters a token
        chars = sum(TEMPLATE_CHARS + sum(len(r.text or "") for recs in unit_joined[u].values()
                                         for r in recs[0].responses) for u in units)
        per_call = self.stage.settings.max_tokens if self.stage.settings.verdict == "text" else 1
        return (f"judge dry run: {len(units)} judgments of {len(keys) - len(self.stage.skipped)} questions by "
                f"{self.options.roles['judge'].raw}: about {chars // 4} prompt tokens and at most "
                f"{len(units) * per_call} output tokens (re-asks not counted); output {self.output}; nothing sent")


def plan_judging(args: argparse.Namespace) -> JudgePlan:
    judge = parse_model_spec(args.judge, judge_options(args.judge_args))
    _check_judge(judge, args.verdict)
    logs = [read_log(p) for p in args.runs] + ([read_log(args.baseline)] if args.baseline else [])
    _check_logs(logs, args.protocol)
    if args.prompt_form == "completion" and args.verdict != "prob":
        raise ConfigError("--prompt-form completion is for --verdict prob (text verdicts are chats)")
    if args.max_tokens < 1:
        raise ConfigError("--max-tokens must be at least 1")
    contestants = tuple(Contestant(f"model_{i + 1}", _model_name(log)) for i, log in enumerate(logs))
    reference, ref_name, ref_hash = _reference(args)
    settings = JudgeSettings(args.protocol, contestants, args.verdict, args.template, args.max_tokens,
                             reference, ref_name, ref_hash, _self_judged(judge, logs, contestants),
                             args.prompt_form, args.seed)
    stage = JudgeStage(settings)
    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    chosen = limited_ids(logs[0], args.limit)
    inputs = [StageInput(c.label, with_ids(log, chosen)) for c, log in zip(contestants, logs, strict=True)]
    options = StageOptions(roles={"judge": judge}, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                           seed=args.seed, progress=not args.no_progress, concurrency=args.concurrency)
    output = args.output or (args.output_dir / "judge" / (
        f"{logs[0].header.task_name}-{args.protocol}-{stage_identity(stage, inputs, {'judge': judge}, args.seed)[:10]}.jsonl"))
    return JudgePlan(stage, inputs, output, options, _missing_notes(inputs))


def judge_options(text: str) -> dict[str, str]:
    """`--judge-args k=v,k=v` as the judge backend's options (checked by its spec)."""
    pairs = [part.strip().partition("=") for part in text.split(",") if part.strip()]
    bad = [key + eq + value for key, eq, value in pairs if not eq or not key.strip()]
    if bad:
        raise ConfigError(f"--judge-args: {bad[0]!r} is not key=value")
    return {key.strip(): value.strip() for key, _, value in pairs}


def _check_judge(judge: ModelSpec, verdict: str) -> None:
    """Before anything loads: the judge's declared capabilities must include what it is asked."""
    needs = CHOICE_LOGPROBS if verdict == "prob" else GENERATE
    declared = model_facts(judge).capabilities
    if declared is not None and needs not in declared:
        raise ConfigError(f"--judge {judge.raw}: the judge needs {needs}, which this backend does not offer "
                          f"(it has: {', '.join(sorted(declared)) or 'nothing'})")


def _check_logs(logs: Sequence[RunLog], protocol: str) -> None:
    tasks = {log.header.task_name for log in logs}
    if len(tasks) > 1:
        named = ", ".join(f"{log.path} ({log.header.task_name})" for log in logs)
        raise ConfigError(f"the logs to judge are of different tasks: {named}")
    for log in logs:
        if log.header.kind != "run":
            raise ConfigError(f"{log.path}: a {log.header.kind} log, not a generation run log")
    if protocol == "pairwise" and len(logs) != 2:
        raise ConfigError(f"pairwise judging needs two contestants (RUN RUN, or RUN --baseline RUN); got {len(logs)}")


def _model_name(log: RunLog) -> str:
    return str(log.header.model.get("name") or log.header.model_spec)


def _self_judged(judge: ModelSpec, logs: Sequence[RunLog], contestants: Sequence[Contestant]) -> str | None:
    for log, contestant in zip(logs, contestants, strict=True):
        if log.header.model_spec == judge.raw or contestant.name == judge.target:
            return contestant.name
    return None


def _reference(args: argparse.Namespace) -> tuple[dict[str, str], str, str]:
    path: Path | None = args.reference_outputs
    if args.protocol != "reference":
        if path is not None:
            raise ConfigError("--reference-outputs is for --protocol reference")
        return {}, "", ""
    if path is None:
        raise ConfigError("--protocol reference needs --reference-outputs FILE (e.g. AlpacaEval's "
                          "results/text_davinci_003/model_outputs.json)")
    if not path.is_file():
        raise ConfigError(f"--reference-outputs {path}: no such file")
    outputs: dict[str, str] = {}
    name = ""
    for line, row in read_json_array(path):
        if not isinstance(row.get("instruction"), str) or not isinstance(row.get("output"), str):
            raise ConfigError(f"{path}:{line}: a reference output needs string fields 'instruction' and 'output'")
        outputs[stable_hash(row["instruction"], 12)] = row["output"]
        name = name or str(row.get("generator") or "")
    return outputs, name or path.parent.name, file_hash(path)


def _missing_notes(inputs: Sequence[StageInput]) -> list[str]:
    """One line per question some contestant's log lacks (skipped, counted in the header)."""
    ids = [set(i.log.samples) for i in inputs]
    first = ids[0]
    notes = []
    for inp, have in zip(inputs, ids, strict=True):
        for missing in sorted(first - have):
            notes.append(f"skipped question {missing}: missing from {inp.label}'s log {inp.log.path}")
    return notes


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def limited_ids(log: RunLog, limit: int | None) -> set[str] | None:
    """The first `limit` questions of the first contestant's log (None: all)."""
    if limit is None:
        return None
    if limit < 1:
        raise ConfigError("--limit must be at least 1")
    return set(list(log.samples)[:limit])


def with_ids(log: RunLog, ids: set[str] | None) -> RunLog:
    """The log with only these questions (every contestant the same ones, so --limit skips none)."""
    if ids is None:
        return log
    return dataclasses.replace(log, samples={k: v for k, v in log.samples.items() if k in ids})
