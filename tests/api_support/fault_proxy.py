"""A fault-injecting HTTP proxy for OpenAI-style APIs, on 127.0.0.1, run in a thread.

In front of a real server (or its own stub upstream) it can add latency; answer 429 (with
Retry-After and retry-after-ms), 500, 401 (quoting the key, as OpenAI does), hang past the
client's timeout, return malformed JSON or a truncated body, each at a set rate; cap accepted
requests per second (429 above it); and count everything it sees. Faults are drawn from a seeded RNG in arrival order.

    with FaultProxy(upstream="http://127.0.0.1:PORT") as proxy:
        proxy.configure(latency_s=0.2, rates={"429": 0.05, "500": 0.05}, rps=10)
        ... point the client at proxy.url ...
        proxy.stats["requests"]
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientConnectionResetError, ClientSession, ClientTimeout, web

FAULT_KINDS = ("429", "500", "timeout", "malformed", "truncated", "401")


@dataclass
class ProxyConfig:
    latency_s: float = 0.0
    #: fault kind -> probability per request (kinds: FAULT_KINDS)
    rates: dict[str, float] = field(default_factory=dict)
    retry_after_s: float = 0.5
    #: how long a "timeout" fault holds the request before closing it
    hang_s: float = 30.0
    #: accepted requests per second (sliding 1 s window); None: unlimited
    rps: float | None = None
    #: answer 400 to any request that asks for logprobs (servers without them)
    reject_logprobs: bool = False
    seed: int = 0


class FaultProxy:
    def __init__(self, upstream: str = "stub", host: str = "127.0.0.1") -> None:
        self.upstream = upstream.rstrip("/")
        self.host = host
        self.port = 0
        self.config = ProxyConfig()
        self.stats: Counter[str] = Counter()
        #: monotonic times of the answers passed through unharmed (throughput)
        self.answered_at: list[float] = []
        #: monotonic arrival times of every request
        self.received_at: list[float] = []
        #: Authorization headers seen (tests check that a planted key was really sent)
        self.authorizations: set[str] = set()
        self._rng = random.Random(0)
        self._accepted: deque[float] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._session: ClientSession | None = None

    # -- control (from the test's thread) ---------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def configure(self, **changes: Any) -> None:
        unknown = set(changes) - set(ProxyConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown proxy settings: {sorted(unknown)}")
        bad = set(changes.get("rates", {})) - set(FAULT_KINDS)
        if bad:
            raise ValueError(f"unknown fault kinds: {sorted(bad)}")
        self.config = ProxyConfig(**{**self.config.__dict__, **changes})
        self._rng = random.Random(self.config.seed)

    def reset_stats(self) -> None:
        self.stats.clear()
        self.answered_at.clear()
        self.received_at.clear()

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("fault proxy did not start within 30 s")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the server (in its own thread and event loop) -------------------------------------
    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._session = ClientSession(timeout=ClientTimeout(total=600))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.stats["requests"] += 1
        self.received_at.append(time.monotonic())
        self.authorizations.add(request.headers.get("authorization", ""))
        body = await request.read()
        config = self.config
        limited = self._over_rate(config)
        if limited is not None:
            self.stats["rate_limited"] += 1
            return _error(429, "rate limit: too many requests per second", _retry_headers(limited))
        if config.reject_logprobs and b'"logprobs"' in body:
            self.stats["rejected_logprobs"] += 1
            return _error(400, "logprobs are not supported")
        fault = self._draw_fault(config)
        if fault:
            self.stats[f"fault_{fault}"] += 1
        if fault == "429":
            return _error(429, "injected rate limit", _retry_headers(config.retry_after_s))
        if fault == "500":
            return _error(500, "injected server error")
        if fault == "401":  # as OpenAI does: the error message quotes the key it got
            key = request.headers.get("authorization", "").removeprefix("Bearer ")
            return _error(401, f"Incorrect API key provided: {key}. You can find your API key at ...")
        if fault == "timeout":
            await _hang(request, config.hang_s)
            return _error(504, "injected hang")
        if config.latency_s:
            await asyncio.sleep(config.latency_s)
        status, payload = await self._forward(request, body)
        self.stats["forwarded"] += 1
        if fault == "malformed":
            return web.Response(status=200, body=payload[: len(payload) // 2], content_type="application/json")
        if fault == "truncated":
            return await _truncated(request, payload)
        self.answered_at.append(time.monotonic())
        return web.Response(status=status, body=payload, content_type="application/json")

    def _over_rate(self, config: ProxyConfig) -> float | None:
        """None if accepted, else the seconds until the window has room."""
        if not config.rps:
            return None
        now = time.monotonic()
        while self._accepted and now - self._accepted[0] >= 1.0:
            self._accepted.popleft()
        if len(self._accepted) < math.floor(config.rps):
            self._accepted.append(now)
            return None
        return max(0.001, 1.0 - (now - self._accepted[0]))

    def _draw_fault(self, config: ProxyConfig) -> str | None:
        if not config.rates:
            return None
        roll, edge = self._rng.random(), 0.0
        for kind in FAULT_KINDS:
            edge += config.rates.get(kind, 0.0)
            if roll < edge:
                return kind
        return None

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, bytes]:
        if self.upstream == "stub":
            return 200, _stub_answer(request.path, body)
        assert self._session is not None
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        if "authorization" in request.headers:
            headers["authorization"] = request.headers["authorization"]
        target = self.upstream + request.path_qs
        async with self._session.request(request.method, target, data=body, headers=headers) as upstream:
            return upstream.status, await upstream.read()


async def _hang(request: web.Request, seconds: float) -> None:
    """Say nothing for `seconds`, or until the client gives up and closes the connection."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(0.05)


def _retry_headers(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds))), "retry-after-ms": str(int(seconds * 1000))}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps({"error": {"message": message, "type": "injected", "code": status}})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


async def _truncated(request: web.Request, payload: bytes) -> web.StreamResponse:
    """Promise the whole body, send half, drop the connection."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(payload)
    try:
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
    except (ConnectionError, ClientConnectionResetError):
        pass  # the client already gave up (its timeout): nothing to truncate
    if request.transport is not None:
        request.transport.close()
    return response


def _stub_answer(path: str, body: bytes) -> bytes:
    """A deterministic OpenAI-style answer: a letter chosen by a hash of the request."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {}
    if path.endswith("/models"):
        return json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode()
    prompt = json.dumps(data.get("messages") or data.get("prompt") or "", sort_keys=True)
    letter = "ABCD"[zlib.crc32(prompt.encode()) % 4]
    usage = {"prompt_tokens": max(1, len(prompt) // 4), "completion_tokens": 1,
             "total_tokens": max(1, len(prompt) // 4) + 1}
    top = [{"token": c, "logprob": -0.1 - 0.5 * i, "bytes": None}
           for i, c in enumerate([letter] + [c for c in "ABCD" if c != letter])]
    if path.endswith("/chat/completions"):
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": letter},
                                  "finish_reason": "stop"}
        if data.get("logprobs"):
            choice["logprobs"] = {"content": [{"token": letter, "logprob": top[0]["logprob"],
                                               "bytes": None, "top_logprobs": top}]}
        return json.dumps({"id": "stub", "object": "chat.completion", "model": data.get("model", "stub"),
                           "choices": [choice], "usage": usage}).encode()
    choice = {"index": 0, "text": letter, "finish_reason": "stop"}
    if data.get("logprobs"):
        choice["logprobs"] = {"tokens": [letter], "token_logprobs": [top[0]["logprob"]], "text_offset": [0],
                              "top_logprobs": [{t["token"]: t["logprob"] for t in top}]}
    return json.dumps({"id": "stub", "object": "text_completion", "model": data.get("model", "stub"),
                       "choices": [choice], "usage": usage}).encode()
