"""`evalkit run --tasks mt_bench --judge SPEC`: run, then judge each generation log it wrote.

The shorthand for `evalkit run ...` followed by `evalkit judge LOG --judge SPEC`: the same stage,
the same judgment log and resume (a rerun of the command resumes the run, then the judging).
Every judge option is checked before any model loads. Single grading is the default, since a
run has one model; `--judge-baseline RUN` makes it pairwise against that run's log and
`--judge-reference FILE` makes it AlpacaEval-style against reference outputs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from evalkit import registry
from evalkit.errors import ConfigError
from evalkit.log.io import read_log
from evalkit.models import parse_model_spec
from evalkit.plan import RoleConfig, RunConfig, TaskOutcome
from evalkit.types import GENERATE

PROTOCOL_CHOICES = ("single", "pairwise", "reference")


class JudgeAfterRun:
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("judging after the run (evalkit judge's options)")
        group.add_argument("--judge", metavar="SPEC",
                           help="after the run, judge each generation log with this model (also plays the "
                                "`judge` role of tasks that call one, unless --role judge=... is given)")
        group.add_argument("--judge-args", default="", metavar="K=V,...", help="the judge backend's options")
        group.add_argument("--judge-protocol", choices=PROTOCOL_CHOICES,
                           help="single (default), pairwise (with --judge-baseline) or reference "
                                "(with --judge-reference)")
        group.add_argument("--judge-baseline", type=Path, metavar="RUN",
                           help="pairwise: the other contestant's run log of the same task")
        group.add_argument("--judge-reference", type=Path, metavar="FILE",
                           help="reference protocol: AlpacaEval model_outputs.json[.gz] to judge against")
        group.add_argument("--judge-verdict", choices=("text", "prob"), default="text",
                           help="text: parse [[A]]/Rating: [[n]]; prob: first-token probabilities")
        group.add_argument("--judge-max-tokens", type=int, default=256, help="judge output tokens (default 256)")

    def prepare(self, args: argparse.Namespace, config: RunConfig) -> RunConfig:
        if not getattr(args, "judge", None):
            for flag in ("judge_protocol", "judge_baseline", "judge_reference"):
                if getattr(args, flag, None):
                    raise ConfigError(f"--{flag.replace('_', '-')} needs --judge SPEC")
            return config
        protocol = protocol_of(args)
        if protocol == "pairwise" and len(config.tasks) != 1:
            raise ConfigError("--judge-baseline judges one task: give a single task in --tasks")
        if args.judge_baseline is not None:
            baseline = read_log(args.judge_baseline)  # a missing or broken log fails here, before the run
            if baseline.header.kind != "run":
                raise ConfigError(f"--judge-baseline {args.judge_baseline}: a {baseline.header.kind} log, "
                                  "not a generation run log")
        if args.judge_reference is not None and not args.judge_reference.is_file():
            raise ConfigError(f"--judge-reference {args.judge_reference}: no such file")
        if args.judge_max_tokens < 1:
            raise ConfigError("--judge-max-tokens must be at least 1")
        from evalkit.judges.planning import _check_judge, judge_options

        spec = parse_model_spec(args.judge, judge_options(args.judge_args))
        _check_judge(spec, args.judge_verdict)
        if args.dry_run:
            print(f"evalkit: then each generation log is judged by {args.judge} ({protocol}); "
                  "`evalkit judge LOG --judge SPEC --dry-run` counts its calls", file=sys.stderr)
        if "judge" in config.roles:
            return config
        role = RoleConfig("judge", args.judge, judge_options(args.judge_args))
        return dataclasses.replace(config, roles={**config.roles, "judge": role})

    def after_run(self, args: argparse.Namespace, config: RunConfig, outcomes: Sequence[TaskOutcome]) -> int:
        if not getattr(args, "judge", None) or args.dry_run:
            return 0
        code = 0
        for outcome in outcomes:
            if not _generates(outcome.log_path):
                print(f"evalkit: not judged: {outcome.task} generates no text", file=sys.stderr)
                continue
            code = max(code, self._judge(args, config, outcome))
        return code

    def _judge(self, args: argparse.Namespace, config: RunConfig, outcome: TaskOutcome) -> int:
        from evalkit.judges.planning import plan_judging
        from evalkit.report_text import results_table
        from evalkit.stages.base import run_stage

        plan = plan_judging(judge_namespace(args, config, outcome.log_path))
        for line in plan.notes:
            print(f"evalkit: {line}", file=sys.stderr)
        summary = asyncio.run(run_stage(plan.stage, plan.inputs, plan.output, plan.options))
        print(results_table(f"judge · {protocol_of(args)} · {args.judge} ({plan.output})",
                            summary.results.to_dict(), subtasks=True))
        print(f"  {summary.n_samples} judgments, {summary.n_errors} without a verdict; log: {plan.output}\n")
        return 0


def protocol_of(args: argparse.Namespace) -> str:
    chosen = args.judge_protocol or ("pairwise" if args.judge_baseline else
                                     "reference" if args.judge_reference else "single")
    if chosen == "pairwise" and args.judge_baseline is None:
        raise ConfigError("--judge-protocol pairwise needs --judge-baseline RUN (the other contestant's log)")
    if chosen == "reference" and args.judge_reference is None:
        raise ConfigError("--judge-protocol reference needs --judge-reference FILE")
    if chosen != "pairwise" and args.judge_baseline is not None:
        raise ConfigError(f"--judge-baseline is for pairwise judging, not {chosen}")
    if chosen != "reference" and args.judge_reference is not None:
        raise ConfigError(f"--judge-reference is for the reference protocol, not {chosen}")
    return chosen


def judge_namespace(args: argparse.Namespace, config: RunConfig, log_path: Path) -> argparse.Namespace:
    """The `evalkit judge` arguments this run's options stand for."""
    return argparse.Namespace(
        runs=[log_path], judge=args.judge, judge_args=args.judge_args, protocol=protocol_of(args),
        baseline=args.judge_baseline, reference_outputs=args.judge_reference, template=None,
        verdict=args.judge_verdict, prompt_form="chat", max_tokens=args.judge_max_tokens, limit=None,
        seed=config.seed, concurrency=8, output=None, output_dir=config.output_dir, cache_dir=config.cache_dir,
        no_cache=not config.use_cache, no_progress=not config.progress, dry_run=False,
    )


def _generates(path: Path) -> bool:
    log = read_log(path)
    return any(r.kind == GENERATE for record in log.samples.values() for r in record.requests)


if not any(type(e).__name__ == "JudgeAfterRun" for e in registry.run_extensions):  # imported once
    registry.run_extensions.append(JudgeAfterRun())
