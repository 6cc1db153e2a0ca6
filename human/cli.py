"""`evalkit human serve|export|report`: registered as a plugin command (imports kept light)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from evalkit import registry
from evalkit.errors import ConfigError

EXPORT_FORMATS = ("csv", "jsonl")


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _turns(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in _names(text))
    except ValueError:
        raise ConfigError(f"--turns must be comma-separated numbers, got {text!r}") from None


def streamlit_command(store: Path, port: int) -> list[str]:
    app = Path(__file__).with_name("app.py")
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", "127.0.0.1",
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]


def streamlit_env(store: Path) -> dict[str, str]:
    return {**os.environ, "EVALKIT_HUMAN_STORE": str(store.resolve())}


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", type=Path, nargs="*", metavar="RUN",
                   help="generation logs of one task (none: resume the study already in --store)")
    p.add_argument("--store", type=Path, default=Path("human.db"), help="the vote store (default ./human.db)")
    p.add_argument("--design", choices=("pairwise", "likert", "ranking"), default="pairwise")
    p.add_argument("--criteria", default="overall", help="likert: comma-separated criteria (default overall)")
    p.add_argument("--scale", type=int, default=5, help="likert levels: 5 or 7 (default 5)")
    p.add_argument("--per-item", type=int, default=2, help="votes per item, from different annotators")
    p.add_argument("--annotators", default="", help="comma-separated annotator names (one token each)")
    p.add_argument("--turns", default="1", help="which turns of multi-turn tasks to rate (default 1)")
    p.add_argument("--limit", type=int, help="the first N samples only")
    p.add_argument("--attention", type=float, default=0.1, help="share of each queue repeated as checks")
    p.add_argument("--per-round", type=int, default=5, help="ranking: systems per round (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of assignments and side draws (default 0)")
    p.add_argument("--show-length", action="store_true", help="do not equalise answer heights")
    p.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1 (default 8501)")
    p.add_argument("--no-launch", action="store_true", help="create the store, print the links, exit")


def serve(args: argparse.Namespace) -> int:
    import importlib.util

    from evalkit.human.store import VoteStore
    from evalkit.human.study import StudyConfig, admin_token, create_study

    if args.runs:
        config = StudyConfig(args.design, _names(args.criteria), args.scale, args.per_item, _turns(args.turns),
                             args.limit, args.attention, args.per_round, args.seed, not args.show_length)
        store = create_study(args.store, args.runs, _names(args.annotators), config)
    else:
        store = VoteStore(args.store)
    if not args.no_launch and importlib.util.find_spec("streamlit") is None:
        raise ConfigError("the annotation app needs Streamlit: pip install 'evalkit[human]'")
    base = f"http://127.0.0.1:{args.port}/"
    for name, token in store.annotators().items():
        print(f"{name}: {base}?token={token}")
    print(f"admin: {base}?page=admin&token={admin_token(store)}")
    store.close()
    if args.no_launch:
        return 0
    sys.stdout.flush()
    os.execve(sys.executable, streamlit_command(args.store, args.port), streamlit_env(args.store))
    return 0  # not reached


def export(args: argparse.Namespace) -> int:
    from evalkit.human.export import write_votes
    from evalkit.human.store import VoteStore

    store = VoteStore(args.store)
    n = write_votes(store, args.output, args.format)
    print(f"wrote {n} votes to {args.output}", file=sys.stderr)
    return 0


def report(args: argparse.Namespace) -> int:
    import json

    from evalkit.human.export import results_text
    from evalkit.human.judge_agreement import human_judge_table
    from evalkit.human.results import compute_results
    from evalkit.human.store import VoteStore

    store = VoteStore(args.store)
    if args.resamples < 10:
        raise ConfigError("--resamples must be at least 10")
    results = compute_results(store, seed=args.seed, resamples=args.resamples)
    if args.judgments:
        checks = {(a.annotator, a.slot) for a in store.assignments() if a.attention}
        votes = [v for v in store.votes() if (v.annotator, v.slot) not in checks]
        results.tables["human-judge agreement"] = human_judge_table(votes, store.items(), args.judgments)
    print(json.dumps(results.to_dict(), indent=2, default=str) if args.json else results_text(results))
    return 0


class HumanCommand:
    help = "human evaluation: serve the blind annotation app, export the votes, report the results"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="human_command", metavar="ACTION", required=True)
        _serve_arguments(sub.add_parser("serve", help="start the annotation app over run logs"))
        ex = sub.add_parser("export", help="write the votes (csv or jsonl)")
        ex.add_argument("store", type=Path, metavar="STORE")
        ex.add_argument("-o", "--output", type=Path, required=True)
        ex.add_argument("--format", choices=EXPORT_FORMATS, default="jsonl")
        rep = sub.add_parser("report", help="win rates, BT/Elo, Likert means, mean ranks, agreement")
        rep.add_argument("store", type=Path, metavar="STORE")
        rep.add_argument("--judgments", type=Path, metavar="LOG", help="a judgment log of the same items")
        rep.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
        rep.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
        rep.add_argument("--json", action="store_true", help="machine-readable output")

    def run(self, args: argparse.Namespace) -> int:
        action = {"serve": serve, "export": export, "report": report}[args.human_command]
        return action(args)


registry.commands.register("human", HumanCommand(), replace=True)
