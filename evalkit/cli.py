"""The command line: `evalkit run | list | show | score`, plus commands that plugins add.

The one `asyncio.run` lives here, at the edge. User errors print one line and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, Protocol

from evalkit import registry
from evalkit.data import resolve_data_dir
from evalkit.errors import ConfigError, EvalkitError
from evalkit.params import split_assignments
from evalkit.perturb.spec import split_task_list
from evalkit.plan import MODEL_ROLE, RoleConfig, RunConfig, TaskOutcome


class Command(Protocol):
    """A subcommand a plugin registers in `registry.commands`."""

    help: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class RunExtension(Protocol):
    """Options a plugin adds to `evalkit run` (registered in `registry.run_extensions`)."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def prepare(self, args: argparse.Namespace, config: RunConfig) -> RunConfig:
        """Check the plugin's options before any model loads; may add to the run's config."""

    def after_run(self, args: argparse.Namespace, config: RunConfig, outcomes: Sequence[TaskOutcome]) -> int:
        """Work on the finished logs; the exit code (0 when there was nothing to do)."""


def run_extensions() -> list[RunExtension]:
    registry.load_plugins()
    return list(registry.run_extensions)  # type: ignore[arg-type]


LIMIT_HELP = (
    "evaluate at most N samples per subtask for grouped tasks (e.g. N per MMLU subject, as "
    "lm-eval's --limit does), else N samples of the task"
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with evalkit's error form: one line, `evalkit: error: ...`, exit 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("evalkit").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"evalkit: error: {where}{message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="evalkit", description="Evaluate and benchmark LLMs.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    _add_run(sub)
    lst = sub.add_parser("list", help="list tasks or models")
    lst.add_argument("what", choices=["tasks", "models"])
    lst.add_argument("--params", action="store_true", help="with `tasks`: each task's parameters (-T) and defaults")
    lst.add_argument("--options", action="store_true", help="with `models`: each backend's --model-args and defaults")
    lst.add_argument("--subtasks", action="store_true", help="with `tasks`: every subtask and variant too")
    show = sub.add_parser("show", help="show the results of a run log or a directory of logs")
    show.add_argument("run", type=Path, metavar="RUN")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.add_argument("--subtasks", action="store_true", help="include per-subtask rows in the table")
    show.add_argument("--format", choices=("text", *registry.show_formats.names()), default="text",
                      help="text (default), or another harness's layout written to --output (lmeval)")
    show.add_argument("-o", "--output", type=Path, help="with --format other than text: the output folder")
    score = sub.add_parser("score", help="re-score run logs from their stored responses (no model calls)")
    score.add_argument("run", type=Path, metavar="RUN")
    for name in registry.commands.names():
        command: Any = registry.commands.get(name)
        command.add_arguments(sub.add_parser(name, help=command.help))
    return parser


def _add_run(sub: Any) -> None:
    run = sub.add_parser("run", help="evaluate a model on tasks (resumes an interrupted run)")
    run.add_argument("--model", required=True, action="append", help="model spec: mock, smollm2, hf:DIR, "
                     "gguf:FILE, openai:MODEL, openai-compat:URL#MODEL, replay:FILE (see README); repeat it "
                     "for a grid: each model runs every task, one log per (model, task)")
    run.add_argument("--tasks", required=True, help="comma-separated task names (evalkit list tasks)")
    run.add_argument("--model-args", default="", help="backend options as key=value,key=value")
    run.add_argument("-T", "--task-param", action="append", default=[], metavar="[TASK.]KEY=VALUE",
                     help="task parameter, repeatable: KEY=VALUE for every task in --tasks that takes "
                     "KEY, TASK.KEY=VALUE for one; list values as KEY=a|b or by repeating the key "
                     "(evalkit list tasks --params)")
    run.add_argument("--chat", dest="chat", action="store_const", const="true", default=None,
                     help="chat prompts (same as -T chat=true); default: chat when the model has a chat template")
    run.add_argument("--no-chat", dest="chat", action="store_const", const="false",
                     help="completion prompts (same as -T chat=false)")
    run.add_argument("--role", action="append", default=[], metavar="NAME=SPEC",
                     help="a named model besides the one under test, e.g. --role judge=openai:gpt-4o")
    run.add_argument("--role-args", action="append", default=[], metavar="NAME:KEY=VALUE",
                     help="an option of a role's backend, repeatable (e.g. judge:temperature=0)")
    run.add_argument("--limit", type=int, help=LIMIT_HELP)
    run.add_argument("--num-fewshot", type=int, help="few-shot examples per prompt (task default if unset)")
    run.add_argument("--seed", type=int, default=0, help="seed for sampling and bootstrap CIs (default 0)")
    run.add_argument("--output-dir", type=Path, default=Path("runs"), help="where run logs go (default ./runs)")
    run.add_argument("--data-dir", help="benchmark data folder (default: $EVALKIT_DATA_DIR)")
    run.add_argument("--cache-dir", type=Path, help="response cache folder (default: $EVALKIT_CACHE_DIR "
                     "or ~/.cache/evalkit)")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the response cache")
    run.add_argument("--overwrite", action="store_true", help="discard existing logs of this run")
    run.add_argument("--repair", action="store_true", help="drop an incomplete last record of a log, then resume")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--offline", action="store_true", help="never try the Hugging Face hub for data")
    run.add_argument("--energy", action="append", default=[], metavar="KEY=VALUE",
                     help="a constant of the energy/CO2e estimate, e.g. pue=1.1, co2e_lb_per_kwh=0.5, "
                          "cpu_watts_per_core=8, dram_watts_per_gb=0.3725, gpus=1, gpu_watts=350")
    run.add_argument("--executor", choices=["local", "ray"], default="local",
                     help="where the model runs: in this process (default) or on a Ray cluster "
                     "(pip install 'evalkit[ray]'); the log, cache and resume are the same")
    run.add_argument("--ray-address", help="with --executor ray: local (a private cluster on 127.0.0.1, "
                     "the default), auto, HOST:PORT or ray://HOST:PORT")
    run.add_argument("--workers", type=int, help="with --executor ray: backend replicas (default 2)")
    run.add_argument("--gpus-per-worker", type=float, help="with --executor ray: GPUs each replica reserves")
    run.add_argument("--chunk-size", type=int, help="with --executor ray: samples per batch sent to a "
                     "worker (default: the backend's)")
    for extension in run_extensions():
        extension.add_arguments(run)
    run.add_argument("--dry-run", action="store_true", help="print the requests and estimated tokens "
                     "(and cost, given prices in --model-args) per task; send nothing")


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 ok, 1 samples failed or an unexpected error, 2 bad input, 130 interrupted.
    Nothing ends in a bare traceback unless -v asks for it; a closed pipe ends quietly."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args_list or "--verbose" in args_list
    try:
        return _dispatch(args_list)
    except EvalkitError as exc:
        print(f"evalkit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("evalkit: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except Exception as exc:  # a bug or an environment problem: one line, the traceback on -v
        if verbose:
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        hint = "" if verbose else " (run with -v for the traceback)"
        print(f"evalkit: error: {type(exc).__name__}: {first}{hint}", file=sys.stderr)
        return 1


def _dispatch(argv: Sequence[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="evalkit: %(levelname)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run, "list": cmd_list, "show": cmd_show, "score": cmd_score,
    }
    if args.command in handlers:
        return handlers[args.command](args)
    command: Any = registry.commands.get(args.command)
    return int(command.run(args))


def _quiet_broken_pipe() -> int:
    """The reader went away (`evalkit list tasks | head -1`): no traceback, and no second
    error when Python flushes stdout at exit. Exit 0, as `yes | head` users expect."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from evalkit.models import parse_model_spec
    from evalkit.report_text import results_table
    from evalkit.runner import run

    configs = [run_config(args, model) for model in args.model]
    for i, config in enumerate(configs):  # a grid's later models fail now, not after the first one ran
        parse_model_spec(config.model, config.model_args)
        for extension in run_extensions():
            configs[i] = config = extension.prepare(args, config)
    if args.dry_run:
        from evalkit.dryrun import dry_run

        for config in configs:
            print(dry_run(config))
        return 0
    code = 0
    for config in configs:  # a grid: each model in turn, each (model, task) its own resumable log
        outcomes = asyncio.run(run(config))
        for outcome in outcomes:
            print(results_table(outcome.task, outcome.results, subtasks=False))
            errors = f", {outcome.n_errors} errors (excluded; rerun to retry them)" if outcome.n_errors else ""
            print(f"  {outcome.n_samples} samples in {outcome.seconds:.1f}s{errors}; log: {outcome.log_path}\n")
        code = max(code, 1 if any(o.n_errors for o in outcomes) else 0)
        for extension in run_extensions():
            code = max(code, extension.after_run(args, config, outcomes))
    return code


def run_config(args: argparse.Namespace, model: str) -> RunConfig:
    from evalkit.efficiency import EnergySettings
    from evalkit.executors.config import executor_options

    tasks = split_task_list(args.tasks)  # commas inside task@wrapper(k=v,...) do not split
    if not tasks:
        raise ConfigError("--tasks is empty")
    task_params = list(args.task_param) + ([f"chat={args.chat}"] if args.chat else [])
    return RunConfig(
        model=model,
        tasks=tasks,
        model_args=parse_key_values(args.model_args, "--model-args"),
        task_params=split_assignments(task_params, tasks),
        roles=parse_roles(args.role, args.role_args),
        limit=args.limit,
        num_fewshot=args.num_fewshot,
        seed=args.seed,
        output_dir=args.output_dir,
        data_dir=resolve_data_dir(args.data_dir),
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        overwrite=args.overwrite,
        repair=args.repair,
        progress=not args.no_progress,
        allow_hub=not args.offline,
        energy=EnergySettings.parse(args.energy),
        ray=executor_options(args.executor, args.ray_address, args.workers, args.gpus_per_worker,
                             args.chunk_size),
    )


def cmd_list(args: argparse.Namespace) -> int:
    from evalkit.report_text import list_models, list_tasks

    if args.params and args.what == "tasks":
        from evalkit.report_text import list_task_params

        print(list_task_params())
        return 0
    print(list_tasks(subtasks=args.subtasks) if args.what == "tasks" else list_models(options=args.options))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from evalkit.report_text import show_logs

    if args.format != "text":  # a plugin's writer (evalkit.registry.show_formats)
        writer: Any = registry.show_formats.get(args.format)
        print(writer(args.run, args.output))
        return 0
    print(show_logs(args.run, as_json=args.json, subtasks=args.subtasks))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from evalkit.report_text import results_table
    from evalkit.stages.rescore import rescore_path

    for path, results in rescore_path(args.run):
        print(results_table(path.name, results, subtasks=False))
    return 0


def parse_roles(roles: Sequence[str], role_args: Sequence[str]) -> dict[str, RoleConfig]:
    """`--role NAME=SPEC` and `--role-args NAME:KEY=VALUE` as role configs."""
    specs: dict[str, str] = {}
    for item in roles:
        name, eq, spec = item.partition("=")
        name = name.strip()
        if not eq or not name.isidentifier() or not spec.strip():
            raise ConfigError(f"--role {item!r}: expected NAME=SPEC, e.g. judge=openai:gpt-4o")
        if name in specs or name == MODEL_ROLE:
            raise ConfigError(f"--role {item!r}: role {name!r} is " + ("given twice" if name in specs else
                              "the model under test (--model)"))
        specs[name] = spec.strip()
    args: dict[str, dict[str, str]] = {name: {} for name in specs}
    for item in role_args:
        name, colon, rest = item.partition(":")
        if not colon or name not in specs:
            known = ", ".join(specs) or "none given"
            raise ConfigError(f"--role-args {item!r}: expected NAME:KEY=VALUE for a --role NAME (roles: {known})")
        args[name].update(parse_key_values(rest, "--role-args"))
    return {name: RoleConfig(name, spec, args[name]) for name, spec in specs.items()}


def parse_key_values(text: str, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise ConfigError(f"{flag}: {part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


if __name__ == "__main__":
    sys.exit(main())
