"""`evalkit run --dry-run`: what a run would send, before spending anything.

Loads the tasks' data and builds every request exactly as the run would, without creating
the backend, touching the cache or writing logs. Token counts are estimates (about 4
characters per token); completion tokens are each request's max_tokens, an upper bound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from evalkit.backends.facts import model_facts
from evalkit.backends.pricing import Pricing
from evalkit.backends.spec import estimate_tokens
from evalkit.models import parse_model_spec
from evalkit.plan import RunConfig
from evalkit.runner import build_tasks, load_and_select
from evalkit.task import DataSource, Task
from evalkit.types import (
    ChoiceLogprobsRequest,
    EmbedRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Request,
)


@dataclass
class TaskEstimate:
    task: str
    samples: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    interactive: bool = False

    def add(self, request: Request) -> None:
        self.requests[request.kind] += 1
        prompt, completion = request_tokens(request)
        self.prompt_tokens += prompt
        self.completion_tokens += completion


def request_tokens(request: Request) -> tuple[int, int]:
    """(estimated prompt tokens, most completion tokens) of one request."""
    if isinstance(request, GenerateRequest):
        return estimate_tokens(request.prompt), request.params.max_tokens
    if isinstance(request, ChoiceLogprobsRequest):
        return estimate_tokens(request.prompt), 1
    if isinstance(request, LoglikelihoodRequest):
        return estimate_tokens(request.context + request.continuation), 0
    if isinstance(request, EmbedRequest):
        return estimate_tokens(request.text), 0
    raise TypeError(f"unknown request {request!r}")


def estimate_task(task: Task, config: RunConfig, source: DataSource) -> TaskEstimate:
    data, samples, k = load_and_select(task, source, config)
    estimate = TaskEstimate(task.name, samples=len(samples), interactive=task.interactive)
    for sample in samples:
        for request in task.build(sample, task.select_shots(sample, data, k)).requests:
            estimate.add(request)
    return estimate


def dry_run(config: RunConfig) -> str:
    spec = parse_model_spec(config.model, config.model_args)
    pricing = Pricing.from_options(spec.options)
    facts = model_facts(spec)
    tasks = build_tasks(config, facts)
    if facts.capabilities is not None:  # known without loading or contacting anything
        tasks = [task.with_capabilities(facts.capabilities) for task in tasks]
    source = DataSource(config.data_dir, config.allow_hub)
    estimates = [estimate_task(task, config, source) for task in tasks]
    return render(spec.raw, estimates, pricing)


def render(model: str, estimates: list[TaskEstimate], pricing: Pricing | None) -> str:
    header = f"{'task':<24} {'samples':>8} {'requests':>9}  {'by kind':<36} {'prompt tok':>11} {'max compl tok':>14}"
    if pricing:
        header += f" {'max cost $':>11}"
    lines = [f"dry run for model {model}: nothing was sent, cached or written", header]
    total = TaskEstimate("total")
    for est in estimates:
        lines.append(_row(est, pricing, note=" (first turn only)" if est.interactive else ""))
        total.samples += est.samples
        total.requests.update(est.requests)
        total.prompt_tokens += est.prompt_tokens
        total.completion_tokens += est.completion_tokens
    if len(estimates) > 1:
        lines.append(_row(total, pricing))
    lines.append("tokens are estimates (~4 ASCII characters or 1 other character per token); completion tokens are max_tokens (an upper bound)")
    return "\n".join(lines)


def _row(est: TaskEstimate, pricing: Pricing | None, note: str = "") -> str:
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(est.requests.items())) or "-"
    row = (f"{est.task:<24} {est.samples:>8} {sum(est.requests.values()):>9}  {kinds:<36} "
           f"{est.prompt_tokens:>11,} {est.completion_tokens:>14,}")
    if pricing:
        row += f" {pricing.cost(est.prompt_tokens, est.completion_tokens):>11.4f}"
    return row + note
