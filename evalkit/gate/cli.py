"""`evalkit gate`, `evalkit gate calibrate` and `evalkit baseline save`: plugin commands.

Exit codes of `evalkit gate`: 0 pass, 1 regression, 2 bad input (a one-line error naming the
file, task or flag), 3 inconclusive (`--inconclusive pass|fail` maps it to 0 or 1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from evalkit import registry
from evalkit.errors import ConfigError
from evalkit.gate.config import (
    GROUPINGS,
    INCONCLUSIVE_POLICIES,
    GateConfig,
    load_config,
    with_overrides,
)


class GateCommand:
    help = "compare a candidate run with a baseline by paired tests (exit 0 pass, 1 regression, 2 bad input, 3 inconclusive)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        _add_gate_options(parser)
        parser.add_argument("--baseline", metavar="RUN_OR_NAME",
                            help="a run log, a directory of logs, a baseline directory or a saved baseline's NAME")
        parser.add_argument("--candidate", metavar="RUN", help="a run log or a directory of logs")
        parser.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML (one testcase per gated metric)")
        parser.add_argument("--markdown", type=Path, metavar="FILE",
                            help="write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when set)")
        parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
        sub = parser.add_subparsers(dest="gate_command", metavar="calibrate")
        calibrate = sub.add_parser("calibrate", help="measure the run-to-run noise floor from two runs of one configuration")
        calibrate.add_argument("first", metavar="RUN_1", nargs="?", help="a run of the baseline configuration")
        calibrate.add_argument("second", metavar="RUN_2", nargs="?", help="another run of it (another seed)")
        calibrate.add_argument("--rerun", metavar="BASELINE_LOG", type=Path,
                               help="instead: run this log's configuration twice (seeds --seeds, no cache)")
        calibrate.add_argument("--seeds", default="1,2", help="the two seeds of --rerun (default 1,2)")
        calibrate.add_argument("--output-dir", type=Path, default=Path("runs-calibrate"),
                               help="where --rerun writes its two runs (default ./runs-calibrate)")
        calibrate.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                               help="noise-floor JSON to write (name it in the gate config's noise_floor)")
        _add_gate_options(calibrate)

    def run(self, args: argparse.Namespace) -> int:
        from evalkit.gate.baseline import baselines_dir

        config = _config(args)
        root = baselines_dir(args.baselines_dir)
        if getattr(args, "gate_command", None) == "calibrate":
            return _calibrate(args, config, root)
        if not args.baseline or not args.candidate:
            raise ConfigError("gate: --baseline and --candidate are both required")
        return _gate(args, config, root)


def _add_gate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="TOML", help="gate settings (see docs/ci.md); flags override it")
    parser.add_argument("--baselines-dir", type=Path, metavar="DIR",
                        help="where saved baselines live (default $EVALKIT_BASELINES_DIR or ./evalkit-baselines)")
    parser.add_argument("--metric", action="append", metavar="[TASK:]METRIC",
                        help="gate this metric (repeatable; default: each task's headline metric)")
    parser.add_argument("--by", action="append", choices=GROUPINGS, help="also gate per subtask or category")
    parser.add_argument("--tolerance", type=float, help="largest acceptable drop, absolute (default 0: any drop the data shows fails)")
    parser.add_argument("--relative-tolerance", type=float, help="... or relative to the baseline value")
    parser.add_argument("--alpha", type=float, help="family-wise error rate over the gated metrics (default 0.05)")
    parser.add_argument("--min-samples", type=int, help="fewer shared samples: inconclusive (default 30)")
    parser.add_argument("--inconclusive", choices=INCONCLUSIVE_POLICIES,
                        help="what an inconclusive result does: exit3 (default), pass (exit 0) or fail (exit 1)")
    parser.add_argument("--noise-floor", type=Path, metavar="FILE", help="noise floor from `evalkit gate calibrate`")
    parser.add_argument("--resamples", type=int, help="paired-bootstrap resamples (default 10000)")
    parser.add_argument("--seed", type=int, help="bootstrap seed (default 0)")
    parser.add_argument("--allow-task-mismatch", action="store_true", default=None,
                        help="compare even when task versions, prompt formats or parameters differ")
    parser.add_argument("--allow-sample-mismatch", action="store_true", default=None,
                        help="compare the shared samples when the sample sets differ or have errors")


def _config(args: argparse.Namespace) -> GateConfig:
    base = load_config(args.config)
    return with_overrides(
        base, tolerance=args.tolerance, relative_tolerance=args.relative_tolerance, alpha=args.alpha,
        min_samples=args.min_samples, inconclusive=args.inconclusive, noise_floor=args.noise_floor,
        resamples=args.resamples, seed=args.seed, metrics=args.metric, by=args.by,
        allow_task_mismatch=args.allow_task_mismatch, allow_sample_mismatch=args.allow_sample_mismatch,
    )


def _gate(args: argparse.Namespace, config: GateConfig, root: Path) -> int:
    from evalkit.gate import run_gate
    from evalkit.gate.outputs import json_report, junit, markdown, terminal_table

    for flag, path in (("--junit", args.junit), ("--markdown", args.markdown), ("--json", args.json)):
        if path is not None and path.is_dir():
            raise ConfigError(f"{flag} {path}: is a directory")
    report = run_gate(args.baseline, args.candidate, config, root)
    view = (report.verdicts, report.tasks, report.status, report.exit_code)
    print(terminal_table(*view))
    md = markdown(*view)
    if args.junit:
        _write(args.junit, junit(report.verdicts, report.tasks))
    if args.markdown:
        _write(args.markdown, md.encode("utf-8"))
    if args.json:
        data = json_report(*view, report.candidate_only)
        _write(args.json, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8"))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(md + "\n")
    return report.exit_code


def _calibrate(args: argparse.Namespace, config: GateConfig, root: Path) -> int:
    from evalkit.gate.baseline import resolve_logs
    from evalkit.gate.noise import calibrate

    if args.rerun is not None:
        first, second = _rerun(args)
    elif args.first and args.second:
        first = resolve_logs(args.first, root, flag="calibrate RUN_1")
        second = resolve_logs(args.second, root, flag="calibrate RUN_2")
    else:
        raise ConfigError("gate calibrate: give two runs (RUN_1 RUN_2) or --rerun BASELINE_LOG")
    data = calibrate(first, second, config)
    _write(args.output, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
    for floor in data["floors"]:
        print(f"{floor['task']}:{floor['metric']}: run-to-run spread {floor['spread']:.4f} (n = {floor['n']})")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _rerun(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    import asyncio

    from evalkit.gate.noise import rerun_configs
    from evalkit.runner import run

    try:
        one, two = (int(s) for s in args.seeds.split(","))
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds!r}: expected two integers, e.g. 1,2") from None
    logs = []
    for config in rerun_configs(args.rerun, (one, two), args.output_dir):
        (outcome,) = asyncio.run(run(config))
        logs.append([outcome.log_path])
    return logs[0], logs[1]


def _write(path: Path, data: bytes) -> None:
    """Write whole or not at all (a temporary file renamed over the target)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None


class BaselineCommand:
    help = "store a run as a named baseline for `evalkit gate --baseline NAME`"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="baseline_command", metavar="save", required=True)
        save = sub.add_parser("save", help="store RUN's logs (or their scores only, --compact) with a manifest of hashes")
        save.add_argument("run", type=Path, metavar="RUN", help="a run log or a directory of logs")
        save.add_argument("--name", required=True, help="the baseline's name")
        save.add_argument("--compact", action="store_true",
                          help="keep per-sample scores only (no prompts, responses or benchmark text): Git-friendly")
        save.add_argument("--baselines-dir", type=Path, metavar="DIR",
                          help="where baselines live (default $EVALKIT_BASELINES_DIR or ./evalkit-baselines)")
        save.add_argument("--overwrite", action="store_true", help="replace an existing baseline of that name")

    def run(self, args: argparse.Namespace) -> int:
        from evalkit.gate.baseline import baselines_dir, save_baseline

        target = save_baseline(args.run, args.name, baselines_dir(args.baselines_dir), compact=args.compact,
                               overwrite=args.overwrite)
        print(f"saved baseline {args.name!r} ({'compact' if args.compact else 'full'}) in {target}")
        return 0


registry.commands.register("gate", GateCommand(), replace=True)
registry.commands.register("baseline", BaselineCommand(), replace=True)
