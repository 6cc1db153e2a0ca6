"""OpenAI and OpenAI-compatible servers through the official `openai` async client.

Specs: `openai:<model>` (key from $OPENAI_API_KEY) and `openai-compat:<base_url>#<model>`
(no key unless `api_key_env=NAME` names a variable holding one). `--model-args` options:

  base_url=URL                  override the API address (openai:)
  api_key_env=NAME              read the key from $NAME (keys are never accepted as values)
  timeout=S                     per-attempt time limit (default 120)
  max_attempts=N                attempts per request before it becomes an error (default 8)
  concurrency=N, max_concurrency=N, min_concurrency=N   adaptive limiter (8, 64, 1)
  rpm=N, tpm=N                  client-side requests/tokens-per-minute budgets
  price_prompt_per_1k=USD, price_completion_per_1k=USD   cost accounting
  top_logprobs=K                alternatives read for choice probabilities (default 20)
  choice_logprobs=false         do not offer choice probabilities (MC tasks skip calibration)
  first_token_logprobs=MODE     how a greedy answer's first-token alternatives (the choice
                                probabilities of generative MC tasks) are read:
      shared    logprobs on the answer itself: one call, but the server computes
                alternatives for every generated token. Default for openai:, where they
                are free.
      paired    a 1-token logprobs request sent together with the answer. Default for
                openai-compat:, because its worst case is mild: a server with a prefix
                cache (llama.cpp, vLLM) evaluates the prompt once for both, one without
                evaluates it twice. llama-cpp-python's server computes logprobs in Python
                over the whole vocabulary, ~0.1-0.2 s per token: shared made a 9-token
                MMLU answer ~0.7-1 s slower, paired ~0.15-0.4 s.
      separate  only when the choice request comes (the prompt is evaluated again).
                                Either way they are asked only while choice requests use
                                them: 32 unclaimed in a row (a task without choice
                                probabilities) stop it, the next choice request resumes it.
  echo_loglikelihood=true       score log-likelihoods through `echo` (only for servers that
                                compute prompt logprobs correctly; NOT llama.cpp's server)

Retries, concurrency and budgets are per request (evalkit.backends.resilience) because only the
transport knows what failed (status, Retry-After, rate-limit headers); the engine above
keeps caching and error capture. Every retry goes into `Response.meta["retries"]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from evalkit.backends import openai_payloads as payloads
from evalkit.backends.base import BaseBackend
from evalkit.backends.pricing import Pricing
from evalkit.backends.redact import Redactor
from evalkit.backends.resilience import (
    AdaptiveLimiter,
    RateBudget,
    Resilience,
    RetriesExhausted,
    RetryableError,
    RetryPolicy,
    rate_limit_pause,
    retry_after_seconds,
)
from evalkit.backends.spec import BackendInfo, Option
from evalkit.errors import BackendUnavailable, ConfigError
from evalkit.models import ModelSpec
from evalkit.types import (
    CHOICE_LOGPROBS,
    GENERATE,
    LOGLIKELIHOOD,
    Capability,
    ChoiceLogprobsRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Prompt,
    Response,
)

OPTIONS = {
    "base_url", "api_key_env", "timeout", "max_attempts", "concurrency", "max_concurrency",
    "min_concurrency", "rpm", "tpm", "price_prompt_per_1k", "price_completion_per_1k",
    "top_logprobs", "echo_loglikelihood", "first_token_logprobs", "choice_logprobs",
}
FIRST_TOKEN_MODES = ("shared", "paired", "separate")
#: statuses worth retrying besides 429 and 5xx: request timeout, conflict
RETRY_STATUSES = frozenset({408, 409})
#: reads a 200 answer: (endpoint, parsed JSON body) -> Response; ValueError if unusable
Parser = Callable[[str, Mapping[str, Any]], Response]


class OpenAIBackend(BaseBackend):
    # small chunks, many in flight: the adaptive limiter sets the real concurrency
    chunk_size = 1

    def __init__(self, kind: str, model: str, base_url: str | None, options: Mapping[str, str]) -> None:
        opts = _Options(kind, options)
        self.kind, self.model = kind, model
        self.base_url = base_url or opts.text("base_url") or None
        if self.base_url:
            _check_url(self.base_url, kind)
        key_env = opts.text("api_key_env") or ("OPENAI_API_KEY" if kind == "openai" else "")
        api_key = os.environ.get(key_env, "") if key_env else ""
        if kind == "openai" and not api_key:
            raise ConfigError(f"--model openai:{model}: set ${key_env} (or --model-args api_key_env=NAME)")
        self.redactor = Redactor([api_key])
        self.echo_loglikelihood = opts.flag("echo_loglikelihood")
        opts.flag("choice_logprobs", default=True)  # validated here, used by declared_capabilities
        self.top_logprobs = opts.integer("top_logprobs", 20, minimum=1)
        self.capabilities = declared_capabilities(options)
        mode = opts.choice("first_token_logprobs", FIRST_TOKEN_MODES, "shared" if kind == "openai" else "paired")
        self.first_token_mode = mode if CHOICE_LOGPROBS in self.capabilities else "separate"
        self._first_tokens = payloads.FirstTokenStore()
        self.pricing = Pricing.from_options(options, f"--model {kind}")
        policy = RetryPolicy(max_attempts=opts.integer("max_attempts", 8, minimum=1),
                             timeout=opts.number("timeout", 120.0))
        bounds = (opts.integer("concurrency", 8, minimum=1), opts.integer("min_concurrency", 1, minimum=1),
                  opts.integer("max_concurrency", 64, minimum=1))
        if not bounds[1] <= bounds[2]:
            raise ConfigError(f"--model-args: min_concurrency {bounds[1]} > max_concurrency {bounds[2]}")
        self.max_concurrent_chunks = bounds[2]
        rpm, tpm = opts.number("rpm", 0.0), opts.number("tpm", 0.0)
        self.resilience = Resilience(
            policy=policy,
            limiter=AdaptiveLimiter(initial=bounds[0], minimum=bounds[1], maximum=bounds[2]),
            requests_budget=RateBudget(rpm) if rpm > 0 else None,
            tokens_budget=RateBudget(tpm) if tpm > 0 else None,
        )
        self._settings = {"timeout_s": policy.timeout, "max_attempts": policy.max_attempts,
                          "concurrency": {"initial": bounds[0], "min": bounds[1], "max": bounds[2]},
                          "rpm": rpm or None, "tpm": tpm or None}
        self.client = _make_client(api_key, self.base_url)

    # -- identity -------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What determines outputs: the server, the model and how requests are built. Never the key."""
        return {"backend": self.kind, "base_url": self.redactor.url(self.base_url or "https://api.openai.com/v1"),
                "model": self.model, "top_logprobs": self.top_logprobs, "echo_loglikelihood": self.echo_loglikelihood}

    def describe(self) -> dict[str, Any]:
        return {**self._settings, "pricing": self.pricing.to_dict() if self.pricing else None,
                "key": "set" if self.redactor.secrets else "none",
                "first_token_logprobs": self.first_token_mode}

    # -- the protocol ---------------------------------------------------------------------
    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]:
        async def one(r: GenerateRequest) -> Response:
            endpoint, body = payloads.generate_body(self.model, r.prompt, r.params, r.repeat)
            estimate = payloads.estimate_tokens(r.prompt) + r.params.max_tokens
            if self.first_token_mode != "separate" and r.params.temperature == 0 and self._first_tokens.wanted:
                if self.first_token_mode == "shared":
                    return await self._generate_sharing_logprobs(endpoint, body, estimate)
                return await self._generate_paired(r.prompt, endpoint, body, estimate)
            return await self._request(endpoint, body, estimate, _text_response)

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def _generate_sharing_logprobs(self, endpoint: str, body: dict[str, Any], estimate: int) -> Response:
        """A greedy generation also asks for its first token's top alternatives: that is the
        distribution a choice_logprobs request on the same prompt reads, so MC tasks that ask
        both (answer + calibration) cost one call, not two. Servers that refuse logprobs
        (HTTP 400) get the plain request, and sharing is turned off."""
        key = payloads.prompt_key(endpoint, body)

        def parse(ep: str, data: Mapping[str, Any]) -> Response:
            response = _text_response(ep, data)
            # without logprobs in the answer, choice_logprobs asks on its own
            with contextlib.suppress(ValueError, KeyError, TypeError):
                top = payloads.first_token_alternatives(ep, data)
                if top:
                    self._first_tokens.put(key, payloads.FirstToken(top, "first token of the greedy generation",
                                                                    meta={"attempts": 0}))
            return response

        shared = payloads.with_first_token_logprobs(endpoint, body, self.top_logprobs)
        response = await self._request(endpoint, shared, estimate, parse)
        if response.error and response.error.startswith("HTTP 400"):
            plain = await self._request(endpoint, body, estimate, _text_response)
            if plain.ok:
                self.first_token_mode = "separate"
            return plain
        return response

    async def _generate_paired(self, prompt: Prompt, endpoint: str, body: dict[str, Any], estimate: int) -> Response:
        """The greedy answer, and its first token's alternatives from a 1-token request sent at
        the same moment, so that the two reach a serialising server side by side and the
        prompt is evaluated once (prefix cache). A server that refuses logprobs (HTTP 400) is not
        asked again; the choice request then gets its own answer (an error, never a guess)."""
        lp_endpoint, lp_body = payloads.choice_logprobs_body(self.model, prompt, self.top_logprobs)
        found: dict[str, dict[str, float]] = {}

        def parse(ep: str, data: Mapping[str, Any]) -> Response:
            found["top"] = payloads.first_token_alternatives(ep, data)
            return Response(usage=payloads.usage_of(data))

        # the 1-token request goes first: it leaves exactly the prompt evaluated, so the
        # answer starts from the cached state without re-evaluating anything
        first, answer = await asyncio.gather(
            self._request(lp_endpoint, lp_body, payloads.estimate_tokens(prompt) + 1, parse),
            self._request(endpoint, body, estimate, _text_response))
        if first.ok and found.get("top"):
            source = "1-token request sent with the greedy generation"
            self._first_tokens.put(payloads.prompt_key(lp_endpoint, lp_body),
                                   payloads.FirstToken(found["top"], source, first.usage, first.meta))
        elif first.error and first.error.startswith("HTTP 400"):
            self.first_token_mode = "separate"
        elif first.meta.get("retries"):  # gave up: the choice request asks again and logs these attempts
            self._first_tokens.put(payloads.prompt_key(lp_endpoint, lp_body),
                                   payloads.FirstToken({}, "failed", meta=first.meta))
        return answer

    async def choice_logprobs(self, requests: Sequence[ChoiceLogprobsRequest]) -> list[Response]:
        async def one(r: ChoiceLogprobsRequest) -> Response:
            endpoint, body = payloads.choice_logprobs_body(self.model, r.prompt, self.top_logprobs)
            known = self._first_tokens.claim(payloads.prompt_key(endpoint, body))
            if known is not None and known.alternatives:  # read alongside the generation of the same prompt
                scores, missing = payloads.choice_scores(known.alternatives, r.choices)
                meta = {**known.meta, "source": known.source, **({"not_in_top": missing} if missing else {})}
                return Response(choice_logprobs=scores, usage=known.usage, meta=meta)

            def parse(ep: str, data: Mapping[str, Any]) -> Response:
                scores, missing = payloads.choice_scores(payloads.first_token_alternatives(ep, data), r.choices)
                meta = {"not_in_top": missing} if missing else {}
                return Response(choice_logprobs=scores, usage=payloads.usage_of(data), meta=meta)

            response = await self._request(endpoint, body, payloads.estimate_tokens(r.prompt) + 1, parse)
            return _with_earlier_attempts(response, known.meta) if known is not None else response

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Response]:
        if not self.echo_loglikelihood:
            raise NotImplementedError("loglikelihood needs --model-args echo_loglikelihood=true")

        async def one(r: LoglikelihoodRequest) -> Response:
            def parse(ep: str, data: Mapping[str, Any]) -> Response:
                total, greedy, count = payloads.echo_loglikelihood(data, len(r.context))
                return Response(logprob=total, is_greedy=greedy, num_tokens=count, usage=payloads.usage_of(data))

            body = payloads.echo_body(self.model, r.context, r.continuation)
            return await self._request("completions", body, payloads.estimate_tokens(r.context + r.continuation), parse)

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def aclose(self) -> None:
        await self.client.close()

    # -- transport ------------------------------------------------------------------------
    async def _request(self, endpoint: str, body: dict[str, Any], estimate: int, parse: Parser) -> Response:
        """Send one request through the retry loop; any failure becomes this request's error."""
        started = time.perf_counter()

        async def attempt() -> Response:
            data = await self._post(endpoint, body)
            try:
                return parse(endpoint, data)
            except (ValueError, KeyError, TypeError) as exc:  # a 200 we cannot read: retry
                raise RetryableError(f"unusable response: {exc}", "malformed") from None

        try:
            response, history = await self.resilience.call(attempt, estimate)
        except RetriesExhausted as exc:  # every attempt is in the history, the last one too
            meta = {**self._meta(exc.history, started), "attempts": len(exc.history)}
            return Response(error=self.redactor.text(str(exc)), meta=meta)
        except Exception as exc:  # a permanent failure (400, 401, 404...): no retry
            return Response(error=self.redactor.text(_describe_error(exc)), meta=self._meta([], started))
        return dataclasses.replace(response, meta={**response.meta, **self._meta(history, started)})

    def _meta(self, history: list[dict[str, Any]], started: float) -> dict[str, Any]:
        meta: dict[str, Any] = {"attempts": len(history) + 1, "seconds": round(time.perf_counter() - started, 3)}
        if history:
            meta["retries"] = [{**h, "error": self.redactor.text(h["error"])} for h in history]
        return meta

    async def _post(self, endpoint: str, body: dict[str, Any]) -> Mapping[str, Any]:
        """One HTTP attempt: the parsed JSON body, or a classified exception."""
        import openai

        api = self.client.chat.completions if endpoint == "chat" else self.client.completions
        try:
            raw: Any = await api.with_raw_response.create(**body)
        except openai.APITimeoutError:
            raise RetryableError("request timed out", "timeout") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise RetryableError(f"connection failed: {type(cause).__name__}: {cause}", "connection") from None
        except openai.APIStatusError as exc:
            raise _status_error(exc) from None
        pause = rate_limit_pause(raw.headers)
        if pause:
            self.resilience.limiter.pause(pause)
        try:
            data = json.loads(raw.content)
        except ValueError as exc:
            raise RetryableError(f"malformed JSON in response ({exc})", "malformed") from None
        if not isinstance(data, dict):
            raise RetryableError("response body is not a JSON object", "malformed")
        return data


def declared_capabilities(options: Mapping[str, str]) -> frozenset[Capability]:
    """What an API backend with these options can do (also used by --dry-run)."""
    def on(name: str, default: bool) -> bool:
        value = options.get(name, "").strip().lower()
        return default if not value else value in ("1", "true", "yes")

    caps: set[Capability] = {GENERATE}
    if on("choice_logprobs", True):
        caps.add(CHOICE_LOGPROBS)
    if on("echo_loglikelihood", False):
        caps.add(LOGLIKELIHOOD)
    return frozenset(caps)


class _Options:
    """--model-args values, checked with errors that name the option."""

    def __init__(self, kind: str, options: Mapping[str, str]) -> None:
        self.kind, self.options = kind, options
        if "api_key" in options:
            raise ConfigError("--model-args api_key is not accepted (it would be logged); "
                              "put the key in an environment variable and pass api_key_env=NAME")
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ConfigError(f"--model {kind}: unknown option(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(OPTIONS))}")

    def text(self, name: str) -> str:
        return self.options.get(name, "").strip()

    def number(self, name: str, default: float) -> float:
        raw = self.text(name)
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise ConfigError(f"--model-args {name}={raw!r}: not a number") from None
        if value < 0:
            raise ConfigError(f"--model-args {name}={raw!r}: must not be negative")
        return value

    def integer(self, name: str, default: int, minimum: int) -> int:
        raw = self.text(name)
        try:
            value = int(raw) if raw else default
        except ValueError:
            raise ConfigError(f"--model-args {name}={raw!r}: not an integer") from None
        if value < minimum:
            raise ConfigError(f"--model-args {name}={raw!r}: must be at least {minimum}")
        return value

    def choice(self, name: str, allowed: Sequence[str], default: str) -> str:
        raw = self.text(name).lower() or default
        if raw not in allowed:
            raise ConfigError(f"--model-args {name}={raw!r}: expected one of {', '.join(allowed)}")
        return raw

    def flag(self, name: str, default: bool = False) -> bool:
        raw = self.text(name).lower()
        if raw == "":
            return default
        if raw in ("0", "false", "no"):
            return False
        if raw in ("1", "true", "yes"):
            return True
        raise ConfigError(f"--model-args {name}={raw!r}: expected true or false")


def _make_client(api_key: str, base_url: str | None) -> Any:
    try:
        import openai
    except ImportError:
        raise BackendUnavailable("API backends need the openai package: pip install 'evalkit[openai]'") from None
    # retries and timeouts are ours (evalkit.backends.resilience); the client's own would hide them
    return openai.AsyncOpenAI(api_key=api_key or "EMPTY", base_url=base_url, max_retries=0, timeout=None)


class RequestRejected(Exception):
    """The server refused the request itself (4xx other than 408/409/429): retrying cannot help."""


def _status_error(exc: Any) -> Exception:
    status = int(exc.status_code)
    message = f"HTTP {status}: {_body_excerpt(exc)}"
    if status == 429 or status >= 500 or status in RETRY_STATUSES:
        kind = "rate_limit" if status == 429 else ("server" if status >= 500 else "conflict")
        return RetryableError(message, kind, retry_after_seconds(exc.response.headers), status)
    return RequestRejected(message)


def _body_excerpt(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        text = error.get("message", error) if isinstance(error, Mapping) else error
        return str(text)[:200]
    return str(getattr(exc, "message", exc))[:200]


def _describe_error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, RequestRejected) else f"{type(exc).__name__}: {exc}"


def _text_response(endpoint: str, data: Mapping[str, Any]) -> Response:
    choice = payloads.first_choice(data)
    meta = {"finish_reason": choice["finish_reason"]} if choice.get("finish_reason") else {}
    return Response(text=payloads.generated_text(endpoint, data), usage=payloads.usage_of(data), meta=meta)


def _with_earlier_attempts(response: Response, earlier: Mapping[str, Any]) -> Response:
    """The failed partner request's attempts go into the log of the request that replaced it."""
    retries = [*earlier.get("retries", ()), *response.meta.get("retries", ())]
    attempts = int(earlier.get("attempts", 0)) + int(response.meta.get("attempts", 0))
    return dataclasses.replace(response, meta={**response.meta, "attempts": attempts, "retries": retries})


def _check_url(url: str, kind: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--model {kind}: base URL {url!r} must start with http:// or https://")
    if parts.username or parts.password:
        raise ConfigError(f"--model {kind}: base URL must not carry credentials (they would be logged); "
                          "use api_key_env=NAME")


def create(spec: ModelSpec) -> OpenAIBackend:
    if spec.backend == "openai-compat":
        base_url, _, model = spec.target.rpartition("#")
        if not base_url or not model:
            raise ConfigError(f"--model {spec.raw!r}: expected openai-compat:<base_url>#<model>")
        if "base_url" in spec.options:
            raise ConfigError(f"--model {spec.raw!r}: the base URL is in the spec; drop --model-args base_url")
        return OpenAIBackend("openai-compat", model, base_url, spec.options)
    return OpenAIBackend("openai", spec.target, None, spec.options)


def _api_options() -> tuple[Option, ...]:
    return (
        Option("base_url", str, "", "another OpenAI-compatible endpoint (openai: only)"),
        Option("api_key_env", str, "OPENAI_API_KEY for openai:", "environment variable holding the key"),
        Option("timeout", float, 120.0, "seconds per attempt"),
        Option("max_attempts", int, 8, "attempts per request (retries with backoff and jitter)"),
        Option("concurrency", int, 8, "requests in flight at the start (adaptive)"),
        Option("max_concurrency", int, 64, "most requests in flight"),
        Option("min_concurrency", int, 1, "fewest requests in flight"),
        Option("rpm", float, 0.0, "client-side requests per minute (0: none)"),
        Option("tpm", float, 0.0, "client-side tokens per minute (0: none)"),
        Option("price_prompt_per_1k", float, 0.0, "dollars per 1k prompt tokens (cost accounting)"),
        Option("price_completion_per_1k", float, 0.0, "dollars per 1k completion tokens"),
        Option("top_logprobs", int, 20, "alternatives asked per token for choice_logprobs"),
        Option("echo_loglikelihood", bool, False, "loglikelihood through echo logprobs (servers where they are right)"),
        Option("first_token_logprobs", str, "shared (openai:), paired (openai-compat:)", "shared, paired or separate"),
        Option("choice_logprobs", bool, True, "option probabilities from first-token logprobs"),
    )


def _compat_target(target: str) -> str | None:
    base_url, _, model = target.rpartition("#")
    return None if base_url and model else "expected openai-compat:<base_url>#<model>"


REFUSED = {"api_key": "it would be logged; put the key in an environment variable and pass api_key_env=NAME"}


def _chat_api(spec: ModelSpec) -> tuple[bool, str]:
    return True, "a chat API"


INFO = BackendInfo("openai", "the OpenAI API (key from OPENAI_API_KEY)", "evalkit.backends.openai_api:create",
                   "openai:MODEL", declared_capabilities, options=_api_options(), extra="openai", probe="openai",
                   chat=_chat_api, refused=REFUSED)
INFO_COMPAT = BackendInfo("openai-compat", "any OpenAI-compatible server (vLLM, llama.cpp, TGI, Ollama)",
                          "evalkit.backends.openai_api:create", "openai-compat:URL#MODEL", declared_capabilities,
                          options=_api_options(), extra="openai", probe="httpx", check_target=_compat_target,
                          chat=_chat_api, refused=REFUSED)
