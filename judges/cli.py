"""`evalkit judge` and `evalkit import-judgments`: registered as plugin commands.

Everything here is checked before any model loads: the logs exist and are of one task, the
protocol and template are known, the judge spec parses and declares what the verdict needs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit import registry
from evalkit.errors import ConfigError

if TYPE_CHECKING:
    from evalkit.judges.report_tables import JudgmentSource

PROTOCOLS = ("pairwise", "single", "reference")


class JudgeCommand:
    help = "judge run logs with a judge model (pairwise both orders, single, reference): a judgment log"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("runs", type=Path, nargs="+", metavar="RUN",
                            help="the contestants' run logs; or `report JUDGMENTS...` (see below)")
        parser.add_argument("--judge", metavar="SPEC", help="the judge model (the `judge` role); required to judge")
        parser.add_argument("--judge-args", default="", metavar="K=V,...", help="the judge backend's options")
        parser.add_argument("--protocol", choices=PROTOCOLS, default="pairwise", help="default pairwise")
        parser.add_argument("--baseline", type=Path, metavar="RUN", help="pairwise: the second contestant")
        parser.add_argument("--reference-outputs", type=Path, metavar="FILE",
                            help="reference protocol: AlpacaEval model_outputs.json[.gz] to judge against")
        parser.add_argument("--template", help="a judge template by name (default: FastChat's per turn)")
        parser.add_argument("--verdict", choices=("text", "prob"), default="text",
                            help="text: parse [[A]]/[[B]]/[[C]] or Rating: [[n]]; prob: first-token probabilities")
        parser.add_argument("--prompt-form", choices=("chat", "completion"), default="chat",
                            help="--verdict prob: chat messages, or one text prompt ending in 'Verdict:' "
                                 "(for small judges used as completion models)")
        parser.add_argument("--max-tokens", type=int, default=256, help="judge output tokens (default 256)")
        parser.add_argument("--limit", type=int, help="judge the first N questions only")
        parser.add_argument("--seed", type=int, default=0, help="seed of side draws and CIs (default 0)")
        parser.add_argument("--concurrency", type=int, default=8,
                            help="judgments in flight (default 8; 1 for a server that answers one at a time)")
        parser.add_argument("-o", "--output", type=Path, help="the judgment log (default under --output-dir)")
        parser.add_argument("--output-dir", type=Path, default=Path("runs"), help="default ./runs")
        parser.add_argument("--cache-dir", type=Path, help="response cache folder")
        parser.add_argument("--no-cache", action="store_true", help="neither read nor write the response cache")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        parser.add_argument("--dry-run", action="store_true", help="print the judge calls and tokens; send nothing")
        add_report_arguments(parser.add_argument_group(
            "evalkit judge report JUDGMENTS... (rankings, win/tie/lose, relative scores, LC win rate, agreement)"))

    def run(self, args: argparse.Namespace) -> int:
        if args.runs[0] == Path("report") and not args.runs[0].exists():
            return run_report(args.runs[1:], args)
        if not args.judge:
            raise ConfigError("judge: the following arguments are required: --judge")
        from evalkit.judges.planning import plan_judging
        from evalkit.report_text import results_table
        from evalkit.stages.base import run_stage

        plan = plan_judging(args)
        for line in plan.notes:
            print(f"evalkit: {line}", file=sys.stderr)
        if args.dry_run:
            print(plan.dry_run_text())
            return 0
        summary = asyncio.run(run_stage(plan.stage, plan.inputs, plan.output, plan.options))
        for question, reason in plan.stage.skipped.items():
            print(f"evalkit: skipped question {question}: {reason}", file=sys.stderr)
        title = f"judge · {args.protocol} · {args.judge} ({plan.output})"
        print(results_table(title, summary.results.to_dict(), subtasks=True))
        print(f"  {summary.n_samples} judgments, {summary.n_errors} without a verdict (unreadable, or a failed "
              f"request that a rerun retries); log: {plan.output}")
        return 0


def add_report_arguments(group: argparse._ArgumentGroup) -> None:
    from evalkit.judges.report import FORMATS

    group.add_argument("--format", choices=FORMATS, default="table", help="report format (default table)")
    group.add_argument("--score-baseline", action="append", metavar="MODEL",
                       help="the model(s) relative scores are taken against (default: every model)")
    group.add_argument("--anchor", metavar="MODEL", help="ratings: this model at 1000 (default: the mean at 1000)")
    group.add_argument("--difficulty", type=Path, metavar="FILE",
                       help="per-question difficulty for the LC win rate (JSON or CSV; without: glm_no_difficulty)")
    group.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")


def run_report(paths: list[Path], args: argparse.Namespace) -> int:
    """Everything is read and checked before anything is written; -o writes the report to a file."""
    from evalkit.judges.report import build_report, read_difficulty, render
    if not paths:
        raise ConfigError("judge report: give one or more judgment logs")
    if args.resamples < 1:
        raise ConfigError(f"--resamples must be at least 1, got {args.resamples}")
    sources = [_load_source(p) for p in paths]
    difficulty = read_difficulty(args.difficulty) if args.difficulty else None
    models = {m for s in sources for j in s.judgments for m in _models_of(j)}
    for name, flag in [(args.anchor, "--anchor"), *((b, "--score-baseline") for b in args.score_baseline or [])]:
        if name is not None and name not in models:
            raise ConfigError(f"{flag} {name!r}: no such model in the judgments ({', '.join(sorted(models))})")
    report = build_report(sources, baselines=args.score_baseline, difficulty=difficulty, anchor=args.anchor,
                          resamples=args.resamples, seed=args.seed)
    text = render(report, args.format)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"evalkit: judge report written to {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def _load_source(path: Path) -> JudgmentSource:
    """A judgment log, or judgments made elsewhere (AlpacaEval annotations, FastChat files)."""
    from evalkit.judges.importers import detect_format, import_judgments
    from evalkit.judges.report_tables import JudgmentSource, load_judgment_log

    if path.name.endswith(("_pair.jsonl", "_single.jsonl")) or (".json" in path.name and
                                                                 not path.name.endswith(".jsonl")):
        return JudgmentSource(str(path), f"imported {detect_format(path)}", import_judgments(path))
    return load_judgment_log(path)


def _models_of(judgment: object) -> tuple[str, ...]:
    names = [getattr(judgment, k, None) for k in ("model_1", "model_2", "model", "baseline")]
    return tuple(n for n in names if isinstance(n, str))


class ImportJudgmentsCommand:
    help = "aggregate judgments made elsewhere (AlpacaEval annotations.json, FastChat *_pair/_single.jsonl)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from evalkit.judges.importers import FORMATS

        parser.add_argument("file", type=Path, metavar="FILE")
        parser.add_argument("--format", choices=FORMATS, help="default: from the file name")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def run(self, args: argparse.Namespace) -> int:
        import json

        from evalkit.judges.imported import aggregate_imported
        from evalkit.report_text import results_table

        results = aggregate_imported(args.file, args.format, args.seed)
        if args.json:
            print(json.dumps({k: r.to_dict() for k, r in results.items()}, indent=2, default=str))
        else:
            print("\n\n".join(results_table(f"{args.file} · {k}", r.to_dict(), subtasks=True)
                              for k, r in results.items()))
        return 0


registry.commands.register("judge", JudgeCommand(), replace=True)
registry.commands.register("import-judgments", ImportJudgmentsCommand(), replace=True)
from evalkit.judges import rescore as _rescore  # noqa: E402,F401  (registers the judgment-log rescorer)
