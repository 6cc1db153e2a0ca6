"""A scripted, deterministic backend for tests and harness benchmarks.

Spec: `mock` or `mock:key=value,...`. Options:
  seed=N          changes every answer (default 0)
  delay=SECONDS   sleep per batch (to make runs long enough to interrupt)
  calls_file=PATH append one line per request actually answered (tests count calls)
  fail_rate=P     answer this fraction of requests (chosen by hash) with an error
  chunk=N         samples per chunk handed over by the runner
  answers=PATH    JSON {"substring": "reply"}: generate replies with the first key found in
                  the prompt (else a deterministic filler)
  capabilities=A|B  offer only these capabilities (default: all four), e.g. a judge without
                  loglikelihood, to test capability checks
  chat_template=true  report a chat template (tasks with chat=auto pick their chat form)
  latencies=A|B|..  report these seconds as the answered requests' own times, in turn
                  (Response.meta["seconds"], as an API backend does), to test latency panels
  first_tokens=A|B|..  likewise the seconds to a streamed first token

Answers depend only on the request (and seed), never on batch composition or order.
"""

from __future__ import annotations

import asyncio
import json
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.backends.base import BaseBackend
from evalkit.backends.spec import BackendInfo, Option
from evalkit.errors import ConfigError
from evalkit.models import ModelSpec
from evalkit.types import (
    CHOICE_LOGPROBS,
    EMBED,
    GENERATE,
    LOGLIKELIHOOD,
    Capability,
    ChoiceLogprobsRequest,
    EmbedRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Request,
    Response,
    Usage,
    prompt_to_json,
    stable_hash,
)

EMBED_DIM = 16


ALL_CAPABILITIES: frozenset[Capability] = frozenset({GENERATE, LOGLIKELIHOOD, EMBED, CHOICE_LOGPROBS})
OPTIONS = {"seed", "delay", "calls_file", "fail_rate", "chunk", "answers", "capabilities", "chat_template",
           "latencies", "first_tokens"}


def declared_capabilities(options: Mapping[str, str]) -> frozenset[Capability]:
    """The capabilities a mock with these options offers (known before it is created)."""
    raw = options.get("capabilities", "")
    if not raw:
        return ALL_CAPABILITIES
    wanted = {c.strip() for c in raw.split("|") if c.strip()}
    unknown = wanted - ALL_CAPABILITIES
    if unknown:
        raise ConfigError(f"--model mock: unknown capabilities {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(ALL_CAPABILITIES))})")
    return frozenset(c for c in ALL_CAPABILITIES if c in wanted)


class MockBackend(BaseBackend):
    capabilities = ALL_CAPABILITIES

    def __init__(self, options: dict[str, str]) -> None:
        try:
            self.seed = int(options.get("seed", "0"))
            self.delay = float(options.get("delay", "0"))
            self.fail_rate = float(options.get("fail_rate", "0"))
            self.chunk_size = int(options.get("chunk", "512"))
            self.latencies = _seconds_list(options.get("latencies", ""))
            self.first_tokens = _seconds_list(options.get("first_tokens", ""))
        except ValueError as exc:
            raise ConfigError(f"--model mock: bad option value ({exc})") from None
        self._answered = 0
        unknown = set(options) - OPTIONS
        if unknown:
            raise ConfigError(f"--model mock: unknown option(s) {', '.join(sorted(unknown))}")
        self.capabilities = declared_capabilities(options)
        self.chat_template = options.get("chat_template", "").lower() in ("1", "true", "yes")
        self.calls_file = Path(options["calls_file"]) if "calls_file" in options else None
        self.answers: dict[str, str] = {}
        if "answers" in options:
            self.answers = _read_answers(Path(options["answers"]))

    def fingerprint(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": "mock", "seed": self.seed, "answers": sorted(self.answers.items())}
        if self.chat_template:
            out["chat_template"] = True
        return out

    def _hash(self, *parts: str) -> int:
        return zlib.crc32("\x00".join(parts).encode("utf-8"), self.seed)

    async def _before(self, requests: Sequence[Request]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.calls_file:
            lines = "".join(request_digest(r) + "\n" for r in requests)
            fd = os.open(self.calls_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, lines.encode("utf-8"))
            finally:
                os.close(fd)

    def _fails(self, key: str) -> bool:
        return self.fail_rate > 0 and (self._hash("fail", key) % 10_000) / 10_000 < self.fail_rate

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Response]:
        await self._before(requests)
        out = []
        for r in requests:
            if self.fail_rate and self._fails(r.context + r.continuation):
                out.append(Response(error="mock: injected failure"))
                continue
            # tail of the context keeps hashing cheap on long few-shot prompts
            h = self._hash(r.context[-512:], r.continuation)
            logprob = -0.5 - (h % 4000) / 1000.0 - 0.05 * len(r.continuation)
            out.append(Response(logprob=logprob, is_greedy=(h % 7 == 0), num_tokens=max(1, len(r.continuation) // 4)))
        return out

    async def choice_logprobs(self, requests: Sequence[ChoiceLogprobsRequest]) -> list[Response]:
        await self._before(requests)
        out = []
        for r in requests:
            text = json.dumps(prompt_to_json(r.prompt))
            lps = tuple(-0.2 - (self._hash(text[-512:], c) % 3000) / 1000.0 for c in r.choices)
            out.append(Response(choice_logprobs=lps))
        return out

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]:
        await self._before(requests)
        out = []
        for r in requests:
            text = json.dumps(prompt_to_json(r.prompt), ensure_ascii=False)
            if self._fails(text + str(r.repeat)):
                out.append(Response(error="mock: injected failure"))
                continue
            reply = self._scripted(text) or self._filler(text, r.repeat)
            for stop in r.params.stop:
                reply = reply.split(stop)[0]
            usage = Usage(prompt_tokens=len(text) // 4, completion_tokens=max(1, len(reply) // 4))
            out.append(Response(text=reply, usage=usage, meta=self._timing()))
        return out

    def _timing(self) -> dict[str, float]:
        meta: dict[str, float] = {}
        if self.latencies:
            meta["seconds"] = self.latencies[self._answered % len(self.latencies)]
        if self.first_tokens:
            meta["first_token_seconds"] = self.first_tokens[self._answered % len(self.first_tokens)]
        self._answered += 1
        return meta

    async def embed(self, requests: Sequence[EmbedRequest]) -> list[Response]:
        await self._before(requests)
        return [
            Response(vector=tuple(((self._hash(r.text, str(i)) % 2001) - 1000) / 1000.0 for i in range(EMBED_DIM)))
            for r in requests
        ]

    def _scripted(self, text: str) -> str | None:
        for key, reply in self.answers.items():
            if key in text:
                return reply
        return None

    def _filler(self, text: str, repeat: int) -> str:
        h = self._hash(text[-512:], str(repeat))
        return f"The answer is {'ABCD'[h % 4]}. (mock reply {h % 100000})"


def _seconds_list(raw: str) -> tuple[float, ...]:
    return tuple(float(x) for x in raw.split("|") if x.strip())


def _read_answers(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--model mock: cannot read answers file {path}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path}: answers file must be a JSON object of string -> string")
    return data


def request_digest(request: Request) -> str:
    """What `calls_file` records per answered request: tests recompute it from run logs."""
    return stable_hash(request.to_dict(), 24)


def create(spec: ModelSpec) -> MockBackend:
    return MockBackend(dict(spec.options))


INFO = BackendInfo(
    "mock", "scripted deterministic backend for tests and harness benchmarks", "evalkit.backends.mock:create",
    "mock[:key=value,...]", declared_capabilities,
    options=(
        Option("seed", int, 0, "changes every answer"),
        Option("delay", float, 0.0, "seconds of sleep per batch"),
        Option("calls_file", str, "", "append one line per answered request"),
        Option("fail_rate", float, 0.0, "share of requests answered with an error"),
        Option("chunk", int, 512, "samples per chunk"),
        Option("answers", str, "", "JSON file of {substring: reply}"),
        Option("capabilities", str, "all", "offer only these, e.g. generate|embed"),
        Option("chat_template", bool, False, "report a chat template"),
        Option("latencies", str, "", "seconds per answered generate request, in turn, e.g. 0.1|0.4"),
        Option("first_tokens", str, "", "seconds to the first token, in turn"),
    ),
    needs_target=False, options_in_spec=True, chat=lambda spec: _chat_option(spec.options),
)


def _chat_option(options: Mapping[str, str]) -> tuple[bool, str]:
    chat = options.get("chat_template", "").lower() in ("1", "true", "yes")
    return chat, "mock chat_template=true" if chat else "mock without chat_template"
