"""Registry, model-spec grammar and the response cache under concurrent writers."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from pathlib import Path

import pytest

from evalkit import registry
from evalkit.cache import ResponseCache, request_key
from evalkit.errors import ConfigError
from evalkit.models import create_backend, parse_model_spec
from evalkit.types import GenerateRequest, LoglikelihoodRequest, Message, Response


def test_builtin_tasks_arrive_through_the_entry_point() -> None:
    names = registry.tasks.names()
    assert {"mmlu", "mmlu_text", "mmlu_gen", "ceval", "race", "race_high", "mmlu_stem"} <= set(names)
    assert sum(n.startswith("mmlu_") for n in names) >= 57 + 4


def test_unknown_names_suggest_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'cevla'; did you mean 'ceval'"):
        registry.tasks.get("cevla")
    with pytest.raises(ConfigError, match=r"evalkit list tasks"):
        registry.tasks.get("zzzzzz")


@pytest.mark.parametrize(("raw", "backend", "target"), [
    ("mock", "mock", "mock"),
    ("hf:/models/llama", "hf", "/models/llama"),
    ("hf:org/name", "hf", "org/name"),
    ("gguf:smollm2", "gguf", "smollm2"),
    ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
    ("openai-compat:http://127.0.0.1:8000/v1#smol", "openai-compat", "http://127.0.0.1:8000/v1#smol"),
    ("replay:/tmp/out.jsonl", "replay", "/tmp/out.jsonl"),
    ("smollm2", "embedded", "smollm2"),
])
def test_model_spec_grammar(raw: str, backend: str, target: str) -> None:
    spec = parse_model_spec(raw)
    assert (spec.backend, spec.target) == (backend, target)


def test_mock_options_and_bad_specs() -> None:
    assert parse_model_spec("mock:seed=3,delay=0").options == {"seed": "3", "delay": "0"}
    for bad, pattern in [("", "empty"), ("hf:", "nothing after"), ("openai-compat:http://x", "#<model>"),
                         ("mock:seed", "not key=value"), ("vllmx:foo", "unknown model")]:
        with pytest.raises(ConfigError, match=pattern):
            parse_model_spec(bad)
    with pytest.raises(ConfigError, match="unknown option"):
        create_backend(parse_model_spec("mock:sead=1"))


def test_cache_key_separates_models_params_and_samples() -> None:
    ll = LoglikelihoodRequest("context", " A")
    assert request_key("model-a", ll) != request_key("model-b", ll)
    assert request_key("m", ll) != request_key("m", LoglikelihoodRequest("contex", "t A"))
    gen = GenerateRequest((Message("user", "hi"),))
    assert request_key("m", gen) != request_key("m", GenerateRequest((Message("user", "hi"),), repeat=1))
    assert request_key("m", gen) != request_key("m", GenerateRequest((Message("user", "hi"),), sample_id="q2"))


def _writer(path: str, start: int, count: int) -> None:
    cache = ResponseCache(Path(path))
    for i in range(start, start + count, 50):
        cache.put_many((f"key{j}".encode(), Response(logprob=-float(j))) for j in range(i, min(i + 50, start + count)))
    cache.close()


def test_cache_is_safe_under_concurrent_writers(tmp_path: Path) -> None:
    path = str(tmp_path / "responses.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, start, 3000)) for start in (0, 2000, 4000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache = ResponseCache(Path(path))
    got = cache.get_many([f"key{j}".encode() for j in range(7000)])
    assert len(cache) == 7000 and len(got) == 7000
    assert all(got[f"key{j}".encode()].logprob == -float(j) for j in range(7000))


def test_failed_responses_are_not_cached(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put_many([(b"ok", Response(text="x")), (b"bad", Response(error="HTTP 500"))])
    assert set(cache.get_many([b"ok", b"bad"])) == {b"ok"}


def test_backend_with_missing_dependencies_is_a_clean_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.errors import BackendUnavailable
    from evalkit.models import backend_info

    broken = dataclasses.replace(backend_info("hf"), factory="evalkit.backends.no_such_module:create")
    monkeypatch.setitem(registry.backends._entries, "hf", broken)
    with pytest.raises(BackendUnavailable, match=r"backend 'hf' cannot load.*pip install 'evalkit\[hf\]'"):
        create_backend(parse_model_spec("hf:/models/x"))
    monkeypatch.setitem(registry.backends._entries, "hf", "evalkit.backends.no_such_module:INFO")
    with pytest.raises(BackendUnavailable, match=r"backend 'hf' cannot load"):
        parse_model_spec("hf:/models/x")
