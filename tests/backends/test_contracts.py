"""Contract tests over every registered task and backend.

Every task loads (from ../shared/data, its package, or for RACE, which is not in shared data,
invented records in its real format), builds requests its declared capabilities cover,
scores a scripted response and aggregates into metrics that each carry n and a CI method or a
note saying why there is none. Every backend's declaration matches what it does: declared
options are exactly the ones it takes, declared capabilities are the methods that work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from evalkit import registry
from evalkit.backends.base import BaseBackend
from evalkit.errors import ConfigError
from evalkit.log.records import SampleRecord
from evalkit.models import backend_info, create_backend, parse_model_spec
from evalkit.task import DataSource, ScoreContext, Task, get_task, task_entry
from evalkit.types import (
    CAPABILITIES,
    ChoiceLogprobsRequest,
    EmbedRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Request,
    Response,
    RollingLoglikelihoodRequest,
)
from tests.conftest import SHARED_DATA
from tests.tasks.test_loaders import write_original

#: variants with many samples per problem: building is checked for all of them; scoring runs
#: a program per sample, so it is checked on the variants up to n=20 (the same code path)
MAX_SCORED_REQUESTS = 20


def scripted(request: Request, i: int) -> Response:
    if isinstance(request, GenerateRequest):
        return Response(text="The answer is A.\n```python\ndef f():\n    return 1\n```")
    if isinstance(request, LoglikelihoodRequest):
        return Response(logprob=-1.0 - 0.25 * i, is_greedy=i == 0, num_tokens=1)
    if isinstance(request, ChoiceLogprobsRequest):
        return Response(choice_logprobs=tuple(-1.0 - 0.1 * j for j in range(len(request.choices))))
    if isinstance(request, EmbedRequest):
        return Response(vector=(0.1, 0.2, 0.3))
    if isinstance(request, RollingLoglikelihoodRequest):
        return Response(logprob=-2.0 * len(request.text.split()), num_tokens=len(request.text.split()))
    raise TypeError(request)


async def _judge(requests: Sequence[Request]) -> list[Response]:
    return [scripted(r, i) for i, r in enumerate(requests)]


def source_for(name: str, tmp: Path) -> DataSource:
    if task_entry(name).group == "race" or name.startswith("race"):
        if not (tmp / "race").exists():
            for level in ("high", "middle"):
                write_original(tmp, level)
        return DataSource(tmp, allow_hub=False)
    return DataSource(SHARED_DATA, allow_hub=False)


@pytest.fixture(scope="module")
def race_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("race-data")


#: tasks over a file the user gives (-T path=...): the contract runs them on a small one
USER_FILE_TASKS = ("generation", "summarization")


@pytest.fixture(scope="module")
def user_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("user-data") / "pairs.jsonl"
    path.write_text('{"input": "Summarise: the cat sat on the mat.", "reference": "A cat sat."}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize("name", registry.tasks.names())
def test_task_contract(name: str, race_dir: Path, user_jsonl: Path) -> None:
    task = get_task(name, {"path": (str(user_jsonl),)} if name in USER_FILE_TASKS else None)
    assert isinstance(task, Task) and task.name == name and task.description and task.prompt_format
    data = task.load(source_for(name, race_dir))
    assert data.samples and data.origin
    sample = data.samples[0]
    shots = task.select_shots(sample, data, task.default_num_fewshot)
    built = task.build(sample, shots)
    # a task whose scorer sends all its work to a role (SEAT's embedder) builds no requests
    assert (built.requests or task.roles) and isinstance(built.prompt, str)
    kinds = {r.kind for r in built.requests}
    assert kinds <= task.requires | {"choice_logprobs"}, (kinds, task.requires)
    config = task.config()
    assert config["name"] == name and "prompt_format" in config
    if len(built.requests) > MAX_SCORED_REQUESTS:
        return
    responses = [scripted(r, i) for i, r in enumerate(built.requests)]
    ctx = ScoreContext(sample.id, 0, {role: _judge for role in task.roles})
    score = asyncio.run(task.ascore(sample, responses, ctx))
    record = SampleRecord.of(sample, built.prompt, shots, built.requests, responses, score, None)
    failed = SampleRecord(id="failed", subtask=sample.subtask, error="request failed: scripted")
    results = task.aggregate([record, failed])
    assert task.headline_metric in results.overall, (task.headline_metric, list(results.overall))
    for group in (results.overall, *results.subtasks.values(), *results.categories.values()):
        for metric in group.values():
            assert isinstance(metric.n, int) and metric.n >= 0, metric
            assert metric.ci_method or metric.note, f"{name}: {metric.name} has neither a CI method nor a note"


def _backend_options_accepted(name: str) -> set[str]:
    """The option names the backend module itself checks against (its OPTIONS)."""
    import importlib

    module = importlib.import_module(backend_info(name).factory.partition(":")[0])
    return set(getattr(module, "OPTIONS", backend_info(name).option_names))


@pytest.mark.parametrize("name", registry.backends.names())
def test_backend_declaration(name: str) -> None:
    info = backend_info(name)
    assert info.prefix == name and info.description and info.form
    assert info.option_names == _backend_options_accepted(name), "declared options differ from the backend's own"
    assert len({o.name for o in info.options}) == len(info.options)
    targets = {"openai-compat": "http://127.0.0.1:1/v1#m", "gguf": "smollm2", "hf": "smollm2", "embedded": "smollm2"}
    target = "" if info.options_in_spec else targets.get(name, "x")
    raw = f"{name}:{target}" if target else name
    with pytest.raises(ConfigError, match="unknown option"):
        parse_model_spec(raw, {"no_such_option": "1"})
    assert info.capabilities({}) <= CAPABILITIES


def _check_methods(backend: Any, declared: frozenset[str]) -> None:
    assert backend.capabilities == declared
    for capability in declared:
        assert getattr(type(backend), capability) is not getattr(BaseBackend, capability), capability
    for capability in CAPABILITIES - declared:
        method = getattr(type(backend), capability, None)
        assert method is None or method is getattr(BaseBackend, capability) or _option_driven(backend)


def _option_driven(backend: Any) -> bool:
    """Backends whose options turn capabilities off keep the method (the checks refuse it)."""
    return type(backend).__name__ in ("OpenAIBackend", "MockBackend")


REQUESTS: dict[str, Request] = {
    "generate": GenerateRequest("Say hi", sample_id="s"),
    "loglikelihood": LoglikelihoodRequest("The sky is", " blue"),
    "choice_logprobs": ChoiceLogprobsRequest("Pick", ("A", "B")),
    "embed": EmbedRequest("hello"),
    "loglikelihood_rolling": RollingLoglikelihoodRequest("The sky is blue today.", 8, 8),
}


async def _answers(backend: Any, capabilities: frozenset[str]) -> dict[str, Response]:
    out = {c: (await getattr(backend, c)([REQUESTS[c]]))[0] for c in sorted(capabilities)}
    await backend.aclose()
    return out


@pytest.mark.parametrize("options", [{}, {"capabilities": "generate|embed"}])
def test_mock_capabilities_are_what_works(options: dict[str, str]) -> None:
    spec = parse_model_spec("mock", options)
    declared = backend_info("mock").capabilities(spec.options)
    backend = create_backend(spec)
    _check_methods(backend, declared)
    answers = asyncio.run(_answers(backend, declared))
    assert all(a.ok for a in answers.values())


def test_replay_capabilities_are_what_works(tmp_path: Path) -> None:
    stored = tmp_path / "out.jsonl"
    stored.write_text('{"id": "s", "output": "hi"}\n')
    spec = parse_model_spec(f"replay:{stored}")
    backend = create_backend(spec)
    _check_methods(backend, backend_info("replay").capabilities(spec.options))
    assert asyncio.run(_answers(backend, frozenset({"generate"})))["generate"].text == "hi"


@pytest.mark.parametrize("options", [{}, {"choice_logprobs": "false", "echo_loglikelihood": "true"}])
def test_api_capabilities_follow_their_options(options: dict[str, str]) -> None:
    spec = parse_model_spec("openai-compat:http://127.0.0.1:9/v1#m", options)
    backend = create_backend(spec)
    _check_methods(backend, backend_info("openai-compat").capabilities(spec.options))
    asyncio.run(backend.aclose())


@pytest.mark.slow
def test_local_backends_capabilities_are_what_works() -> None:
    for raw in ("gguf:smollm2", "hf:smollm2"):
        spec = parse_model_spec(raw, {"n_ctx": "512"} if raw.startswith("gguf") else {})
        declared = backend_info(spec.backend).capabilities(spec.options)
        backend = create_backend(spec)
        _check_methods(backend, declared)
        answers = asyncio.run(_answers(backend, declared))
        assert all(a.ok for a in answers.values()), {k: a.error for k, a in answers.items()}
