"""`evalkit leaderboard` and `evalkit ui`: registered as plugin commands (import kept light)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from evalkit import registry
from evalkit.errors import ConfigError
from evalkit.log import LogContent

FORMATS = ("table", "md", "csv", "html", "json")
METHOD_NAMES = ("mean", "win_rate", "normalized")


class LeaderboardCommand:
    help = "rank models over tasks from run logs: CIs, rank intervals, significance (table|md|csv|html|json)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("runs", type=Path, nargs="?", default=Path("runs"), metavar="RUNS_DIR",
                            help="a directory of run logs, or one log (default ./runs)")
        parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
        parser.add_argument("--method", choices=METHOD_NAMES, default="mean",
                            help="aggregate column: macro mean over tasks, HELM mean win rate, or "
                                 "chance-normalised mean (default mean)")
        parser.add_argument("--sort", default="aggregate", metavar="COLUMN",
                            help="order rows by the aggregate (default) or by a task's column")
        parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
        parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
        parser.add_argument("-o", "--output", type=Path, help="write to this file instead of stdout")

    def run(self, args: argparse.Namespace) -> int:
        from evalkit.errors import ConfigError
        from evalkit.reports.frames import load_runs
        from evalkit.reports.leaderboard import build_leaderboard
        from evalkit.reports.render import render

        if args.resamples < 10:
            raise ConfigError("--resamples must be at least 10")
        _check_runs_path(args.runs)
        runset = load_runs(args.runs, workers=os.cpu_count() or 1)
        try:
            board = build_leaderboard(runset, args.method, sort_by=args.sort, resamples=args.resamples,
                                      seed=args.seed)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        text = render(board, args.format, runset)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
            print(f"wrote {args.output}", file=sys.stderr)
        else:
            sys.stdout.write(text if text.endswith("\n") else text + "\n")
        for skipped in runset.skipped:
            print(f"evalkit: skipped {skipped.reason}", file=sys.stderr)
        return 0


class UiCommand:
    help = "start the Streamlit leaderboard app on 127.0.0.1 (needs evalkit[ui])"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("runs", type=Path, nargs="?", default=Path("runs"), metavar="RUNS_DIR",
                            help="a directory of run logs (default ./runs)")
        parser.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1 (default 8501)")

    def run(self, args: argparse.Namespace) -> int:
        import importlib.util

        from evalkit.errors import ConfigError
        from evalkit.reports.frames import load_runs

        if importlib.util.find_spec("streamlit") is None:
            raise ConfigError("the UI needs Streamlit: pip install 'evalkit[ui]'")
        # Index every log now, so the app's first page is served from the index.
        _check_runs_path(args.runs)
        runset = load_runs(args.runs, workers=os.cpu_count() or 1)
        print(f"evalkit ui: {len(runset.runs)} runs indexed, {len(runset.skipped)} logs skipped; "
              f"http://127.0.0.1:{args.port}", file=sys.stderr)
        command = streamlit_command(args.runs, args.port)
        env = {**os.environ, "EVALKIT_RUNS_DIR": str(args.runs.resolve())}
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, command, env)  # become the server: signals reach it directly
        return 0  # not reached


def _check_runs_path(path: Path) -> None:
    """A path that does not exist is a typo, not an empty leaderboard."""
    if not path.exists():
        raise ConfigError(f"{path}: no such run log or directory")
    if not (path.is_dir() or path.is_file()):
        raise ConfigError(f"{path}: not a run log or a directory of logs")


def streamlit_command(runs: Path, port: int) -> list[str]:
    app = Path(__file__).with_name("app.py")
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", "127.0.0.1",
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--", str(runs.resolve())]


def index_finished_log(path: Path, content: LogContent | None = None) -> None:
    """Index a log as soon as `evalkit run` finishes it, so no UI ever parses it again
    (from the records the run still holds in memory when it passes them)."""
    from evalkit.reports.frames import index_content, scan_cached

    if content is None:
        scan_cached(path)
    else:
        index_content(path, content)


if index_finished_log not in registry.log_finished_hooks:
    registry.log_finished_hooks.append(index_finished_log)
registry.commands.register("leaderboard", LeaderboardCommand(), replace=True)
registry.commands.register("ui", UiCommand(), replace=True)
