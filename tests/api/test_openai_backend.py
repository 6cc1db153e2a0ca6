"""The OpenAI-compatible backend against the fault proxy's stub upstream (fast, no model)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from evalkit.backends import openai_payloads as payloads
from evalkit.backends.openai_api import OpenAIBackend, create
from evalkit.backends.redact import Redactor
from evalkit.errors import ConfigError
from evalkit.models import parse_model_spec
from evalkit.types import (
    CHOICE_LOGPROBS,
    GENERATE,
    LOGLIKELIHOOD,
    ChoiceLogprobsRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Message,
    Response,
)
from tests.api_support.fault_proxy import FaultProxy

MIXED_FAULTS = {"429": 0.08, "500": 0.08, "timeout": 0.04, "malformed": 0.05, "truncated": 0.05}


def backend(url: str, **options: str) -> OpenAIBackend:
    return create(parse_model_spec(f"openai-compat:{url}#stub", options))


def chat(i: int) -> GenerateRequest:
    return GenerateRequest((Message("user", f"question {i}"),), GenerationParams(max_tokens=4))


def run(b: OpenAIBackend, method: str, requests: list[Any]) -> list[Response]:
    async def go() -> list[Response]:
        try:
            return list(await getattr(b, method)(requests))
        finally:
            await b.aclose()

    return asyncio.run(go())


def test_chat_and_completion_requests_return_text_and_usage(stub_proxy: FaultProxy) -> None:
    out = run(backend(stub_proxy.url, first_token_logprobs="separate"), "generate",
              [chat(1), GenerateRequest("plain text prompt", GenerationParams(max_tokens=4))])
    assert all(r.ok and r.text in ("A", "B", "C", "D") for r in out)
    assert all(r.usage and r.usage.prompt_tokens > 0 and r.usage.completion_tokens == 1 for r in out)
    assert out[0].meta["attempts"] == 1 and "retries" not in out[0].meta
    assert stub_proxy.stats["requests"] == 2


def test_mixed_faults_are_retried_and_every_retry_is_recorded(stub_proxy: FaultProxy) -> None:
    stub_proxy.configure(rates=MIXED_FAULTS, hang_s=5.0, retry_after_s=0.05, seed=3)
    # answers only: the retry accounting below counts the generations' own calls
    clean = run(backend(stub_proxy.url, first_token_logprobs="separate"), "generate", [chat(i) for i in range(40)])
    faults = sum(n for k, n in stub_proxy.stats.items() if k.startswith("fault_"))
    assert faults >= 5  # the seed gives a real mix
    stub_proxy.configure(rates={})
    out = [r.text for r in run(backend(stub_proxy.url, timeout="0.5", first_token_logprobs="separate"), "generate",
                               [chat(i) for i in range(40)])]
    stub_proxy.configure(rates=MIXED_FAULTS, hang_s=5.0, retry_after_s=0.05, seed=3)
    stub_proxy.reset_stats()
    faulty = run(backend(stub_proxy.url, timeout="0.5", max_attempts="12", first_token_logprobs="separate"), "generate",
                 [chat(i) for i in range(40)])
    assert [r.text for r in faulty] == out == [r.text for r in clean]
    retries = [h for r in faulty for h in r.meta.get("retries", [])]
    injected = sum(n for k, n in stub_proxy.stats.items() if k.startswith("fault_"))
    assert len(retries) == injected == stub_proxy.stats["requests"] - 40
    assert {h["kind"] for h in retries} >= {"rate_limit", "server"}
    assert all(r.meta["attempts"] == 1 + len(r.meta.get("retries", [])) for r in faulty)


def test_a_request_that_keeps_failing_becomes_an_error_with_its_history(stub_proxy: FaultProxy) -> None:
    stub_proxy.configure(rates={"500": 1.0})
    (out,) = run(backend(stub_proxy.url, max_attempts="3", first_token_logprobs="separate"), "generate", [chat(0)])
    assert out.error is not None and "gave up after 3 attempts" in out.error and "HTTP 500" in out.error
    assert [h["status"] for h in out.meta["retries"]] == [500, 500, 500]
    assert stub_proxy.stats["requests"] == 3


def test_choice_logprobs_come_from_the_first_tokens_top_alternatives(stub_proxy: FaultProxy) -> None:
    requests = [ChoiceLogprobsRequest((Message("user", "q"),), ("A", "B", "C", "D")),
                ChoiceLogprobsRequest("text prompt", ("A", "B", "C", "D"))]
    answers = run(backend(stub_proxy.url), "generate", [GenerateRequest(r.prompt, GenerationParams(max_tokens=1))
                                                         for r in requests])
    out = run(backend(stub_proxy.url), "choice_logprobs", requests)
    for scored, answer in zip(out, answers, strict=True):
        assert scored.choice_logprobs is not None
        best = max(range(4), key=lambda i: scored.choice_logprobs[i])  # type: ignore[index]
        assert "ABCD"[best] == answer.text


def test_choice_scores_merge_whitespace_variants_and_flag_missing_choices() -> None:
    scores, missing = payloads.choice_scores({"A": -1.0, " A": -1.0, "B": -2.0, "x": -5.0}, ("A", "B", "C"))
    assert scores[0] == pytest.approx(-1.0 + 0.6931471805599453)
    assert scores[1] == -2.0 and scores[2] == -5.0 and missing == ["C"]


def test_echo_loglikelihood_sums_only_continuation_tokens() -> None:
    body: dict[str, Any] = {"choices": [{"logprobs": {
        "tokens": ["The", " sky", " is", " blue"], "token_logprobs": [None, -1.0, -0.5, -0.25],
        "text_offset": [0, 3, 7, 10], "top_logprobs": [None, {" sky": -1.0}, {" is": -0.5}, {" red": -0.1, " blue": -0.25}],
    }}]}
    total, greedy, count = payloads.echo_loglikelihood(body, len("The sky is"))
    assert (total, greedy, count) == (-0.25, False, 1)
    assert payloads.echo_loglikelihood(body, len("The sky"))[:2] == (-0.75, False)
    body["choices"][0]["logprobs"]["top_logprobs"][3] = {" red": -3.0, " blue": -0.25}
    assert payloads.echo_loglikelihood(body, len("The sky"))[:2] == (-0.75, True)
    with pytest.raises(ValueError, match="no continuation tokens"):
        payloads.echo_loglikelihood(body, len("The sky is blue"))


def test_loglikelihood_is_declared_only_when_echo_is_trusted(stub_proxy: FaultProxy) -> None:
    plain = backend(stub_proxy.url)
    assert plain.capabilities == {GENERATE, CHOICE_LOGPROBS}
    trusted = backend(stub_proxy.url, echo_loglikelihood="true")
    assert LOGLIKELIHOOD in trusted.capabilities
    answers_only = backend(stub_proxy.url, choice_logprobs="false")
    assert answers_only.capabilities == {GENERATE} and answers_only.first_token_mode == "separate"
    with pytest.raises(NotImplementedError):
        run(plain, "loglikelihood", [LoglikelihoodRequest("a", "b")])
    asyncio.run(trusted.aclose())


@pytest.mark.parametrize(("options", "message"), [
    ({"api_key": "sk-abc"}, "api_key is not accepted"),
    ({"colour": "red"}, "unknown option(s) colour"),
    ({"timeout": "soon"}, "timeout='soon': not a number"),
    ({"max_concurrency": "0"}, "max_concurrency='0': must be at least 1"),
    ({"min_concurrency": "9", "max_concurrency": "4"}, "min_concurrency 9 > max_concurrency 4"),
    ({"echo_loglikelihood": "maybe"}, "expected true or false"),
    ({"first_token_logprobs": "always"}, "expected one of shared, paired, separate"),
    ({"price_prompt_per_1k": "cheap"}, "price_prompt_per_1k='cheap' is not a number"),
])
def test_bad_options_get_one_line_errors_naming_the_option(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        backend("http://127.0.0.1:9/v1", **options)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_urls_with_credentials_and_openai_without_a_key_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="must not carry credentials"):
        backend("http://user:secret@127.0.0.1:9/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"set \$OPENAI_API_KEY"):
        create(parse_model_spec("openai:gpt-4o-mini"))


def test_the_key_stays_out_of_fingerprint_describe_and_errors(stub_proxy: FaultProxy,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-test-QWERTYUIOPasdfghjkl1234"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    b = create(parse_model_spec("openai:stub", {"base_url": stub_proxy.url, "max_attempts": "1"}))
    assert key not in json.dumps(b.fingerprint()) + json.dumps(b.describe())
    assert b.describe()["key"] == "set"
    redactor = Redactor([key])
    assert key not in redactor.text(f"401: Incorrect API key provided: {key}; Authorization: Bearer {key}")
    assert redactor.text("leaked sk-proj-abcdefghijklmnop here") == "leaked sk-*** here"
    assert redactor.url("http://u:p@host:8000/v1") == "http://host:8000/v1"
    stub_proxy.configure(rates={"500": 1.0})
    (out,) = run(b, "generate", [chat(0)])
    assert out.error and key not in out.error and key not in json.dumps(out.to_dict())


def test_price_options_give_cost_accounting(stub_proxy: FaultProxy) -> None:
    b = backend(stub_proxy.url, price_prompt_per_1k="2", price_completion_per_1k="10")
    assert b.pricing is not None and b.pricing.cost(1000, 100) == pytest.approx(3.0)
    asyncio.run(b.aclose())


def generate_then_choices(b: OpenAIBackend, prompts: list[Any]) -> tuple[list[Response], list[Response]]:
    async def go() -> tuple[list[Response], list[Response]]:
        try:
            answers = await b.generate([GenerateRequest(p, GenerationParams(max_tokens=4)) for p in prompts])
            choices = await b.choice_logprobs([ChoiceLogprobsRequest(p, ("A", "B", "C", "D")) for p in prompts])
            return answers, choices
        finally:
            await b.aclose()

    return asyncio.run(go())


def test_first_token_modes_give_the_same_answers_and_choice_probabilities(stub_proxy: FaultProxy) -> None:
    prompts: list[Any] = [(Message("user", f"q{i}"),) for i in range(5)] + ["text prompt"]
    runs, sent = {}, {}
    for mode in ("shared", "paired", "separate"):
        stub_proxy.reset_stats()
        runs[mode] = generate_then_choices(backend(stub_proxy.url, first_token_logprobs=mode), prompts)
        sent[mode] = stub_proxy.stats["requests"]
    # shared: one call per prompt; paired: a 1-token partner per answer, none later; separate: asked later
    assert sent == {"shared": len(prompts), "paired": 2 * len(prompts), "separate": 2 * len(prompts)}
    for mode in ("shared", "paired"):
        assert [r.text for r in runs[mode][0]] == [r.text for r in runs["separate"][0]]
        assert [r.choice_logprobs for r in runs[mode][1]] == [r.choice_logprobs for r in runs["separate"][1]]
    assert all(r.meta["source"].startswith("first token") and r.usage is None for r in runs["shared"][1])
    # the partner's own call: its usage and attempts go with the choice response
    assert all(r.meta["source"].startswith("1-token request") and r.usage and r.meta["attempts"] == 1
               for r in runs["paired"][1])
    assert "source" not in runs["separate"][1][0].meta


def test_defaults_pair_for_compatible_servers_and_share_for_openai(stub_proxy: FaultProxy,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-defaults")
    official = create(parse_model_spec("openai:stub", {"base_url": stub_proxy.url}))
    compatible = backend(stub_proxy.url)
    assert (official.first_token_mode, compatible.first_token_mode) == ("shared", "paired")
    assert compatible.describe()["first_token_logprobs"] == "paired"
    for b in (official, compatible):
        asyncio.run(b.aclose())


def test_partners_stop_when_no_choice_request_claims_them(stub_proxy: FaultProxy) -> None:
    b = backend(stub_proxy.url)

    async def go() -> None:
        try:
            for i in range(40):  # greedy answers of a task without choice probabilities
                await b.generate([chat(i)])
            assert stub_proxy.stats["requests"] == 40 + b._first_tokens.give_up_after
            await b.choice_logprobs([ChoiceLogprobsRequest((Message("user", "x"),), ("A", "B"))])
            stub_proxy.reset_stats()
            await b.generate([chat(99)])  # a choice request came: partners are wanted again
            assert stub_proxy.stats["requests"] == 2
        finally:
            await b.aclose()

    asyncio.run(go())


def test_first_token_store_forgets_the_oldest_and_tracks_claims() -> None:
    store = payloads.FirstTokenStore(maxsize=2, give_up_after=3)
    for key in "abc":
        store.put(key, payloads.FirstToken({"A": -0.1}, "test"))
    assert store.claim("a") is None and store.claim("c") is not None  # "a" was evicted
    assert store.wanted
    for key in "def":
        store.put(key, payloads.FirstToken({"A": -0.1}, "test"))
    assert not store.wanted
    store.claim("zzz")
    assert store.wanted


@pytest.mark.parametrize("mode", ["shared", "paired"])
def test_servers_that_refuse_logprobs_get_plain_requests(stub_proxy: FaultProxy, mode: str) -> None:
    stub_proxy.configure(reject_logprobs=True)
    b = backend(stub_proxy.url, first_token_logprobs=mode)
    answers, choices = generate_then_choices(b, [(Message("user", "q"),), (Message("user", "r"),)])
    assert all(r.ok for r in answers) and b.first_token_mode == "separate"
    # the choice probabilities need logprobs: a recorded error, not a guess
    assert all(r.error and "HTTP 400" in r.error for r in choices)


def test_every_attempt_of_paired_requests_is_logged(stub_proxy: FaultProxy) -> None:
    stub_proxy.configure(rates={"500": 0.35}, seed=4)
    prompts: list[Any] = [(Message("user", f"q{i}"),) for i in range(30)]
    answers, choices = generate_then_choices(backend(stub_proxy.url, max_attempts="2"), prompts)
    responses = answers + choices
    # a partner that gave up is replaced by the choice request, which logs its attempts too
    assert any(r.meta.get("retries") and "source" not in r.meta for r in choices)
    assert sum(len(r.meta.get("retries", [])) for r in responses) == stub_proxy.stats["fault_500"]
    assert sum(r.meta["attempts"] for r in responses) == stub_proxy.stats["requests"]
