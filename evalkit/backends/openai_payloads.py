"""Request bodies and response parsing for OpenAI-style APIs (pure functions, no I/O).

Bodies follow the OpenAI reference for /chat/completions and /completions; responses are
read as plain JSON so that servers which differ in small ways from OpenAI (vLLM, llama.cpp,
TGI, Ollama) still work. Anything missing that a request needs raises `ValueError`, which
the backend records as an error on that sample (never a guessed answer).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.backends.spec import (
    estimate_tokens as estimate_tokens,  # re-exported: payloads.estimate_tokens
)
from evalkit.types import GenerationParams, Message, Prompt, Usage, canonical_json


def sampling_fields(params: GenerationParams, repeat: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        # each of the n samples drawn for one prompt gets its own seed
        "seed": params.seed + repeat,
    }
    if params.stop:
        body["stop"] = list(params.stop[:4])  # OpenAI accepts at most 4 stop sequences
    return body


def chat_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [m.to_dict() for m in messages]


def generate_body(model: str, prompt: Prompt, params: GenerationParams, repeat: int) -> tuple[str, dict[str, Any]]:
    """(endpoint, body): chat for message tuples, completions for plain text."""
    if isinstance(prompt, str):
        return "completions", {"model": model, "prompt": prompt, **sampling_fields(params, repeat)}
    return "chat", {"model": model, "messages": chat_messages(prompt), **sampling_fields(params, repeat)}


def choice_logprobs_body(model: str, prompt: Prompt, top_logprobs: int) -> tuple[str, dict[str, Any]]:
    """One greedy token with the top alternatives: the first answer token's distribution."""
    common = {"model": model, "max_tokens": 1, "temperature": 0.0, "seed": 0}
    if isinstance(prompt, str):
        return "completions", {**common, "prompt": prompt, "logprobs": top_logprobs}
    return "chat", {**common, "messages": chat_messages(prompt), "logprobs": True, "top_logprobs": top_logprobs}


def with_first_token_logprobs(endpoint: str, body: Mapping[str, Any], top_logprobs: int) -> dict[str, Any]:
    if endpoint == "chat":
        return {**body, "logprobs": True, "top_logprobs": top_logprobs}
    return {**body, "logprobs": top_logprobs}


def prompt_key(endpoint: str, body: Mapping[str, Any]) -> str:
    """What the first generated token depends on: endpoint, model and prompt."""
    return canonical_json([endpoint, body.get("model"), body.get("messages") or body.get("prompt")])


@dataclass(frozen=True)
class FirstToken:
    """A first token's top alternatives and where they came from: the greedy generation's own
    logprobs (no usage of their own) or a 1-token request of their own (its usage and attempts)."""

    alternatives: Mapping[str, float]
    source: str
    usage: Usage | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


class FirstTokenStore:
    """First-token alternatives read alongside greedy generations, waiting for the choice
    request on the same prompt (an LRU map), and whether reading them still pays.

    They pay while choice requests claim them. Tasks without choice probabilities (long
    greedy answers) never claim any: after `give_up_after` stored in a row with no claim,
    `wanted` turns false; a choice request that finds none turns it back on."""

    def __init__(self, maxsize: int = 20_000, give_up_after: int = 32) -> None:
        self.maxsize = maxsize
        self.give_up_after = give_up_after
        self.wanted = True
        self._unclaimed = 0
        self._items: OrderedDict[str, FirstToken] = OrderedDict()

    def put(self, key: str, value: FirstToken) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        self._unclaimed += 1
        if self._unclaimed >= self.give_up_after:
            self.wanted = False

    def claim(self, key: str) -> FirstToken | None:
        value = self._items.pop(key, None)
        self._unclaimed = 0
        self.wanted = True  # a choice request came: they are used, hit or miss
        return value


def echo_body(model: str, context: str, continuation: str) -> dict[str, Any]:
    """Prompt-token logprobs through echo (only for servers that compute them correctly)."""
    return {"model": model, "prompt": context + continuation, "max_tokens": 0, "echo": True,
            "logprobs": 1, "temperature": 0.0}


def first_choice(body: Mapping[str, Any]) -> Mapping[str, Any]:
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise ValueError("response has no choices")
    return choices[0]


def generated_text(endpoint: str, body: Mapping[str, Any]) -> str:
    choice = first_choice(body)
    if endpoint == "chat":
        message = choice.get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        if content is None and isinstance(message, Mapping) and message.get("refusal"):
            return str(message["refusal"])
    else:
        content = choice.get("text")
    if not isinstance(content, str):
        raise ValueError("response has no text in its first choice")
    return content


def usage_of(body: Mapping[str, Any]) -> Usage | None:
    usage = body.get("usage")
    if not isinstance(usage, Mapping):
        return None
    try:
        return Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return None


def first_token_alternatives(endpoint: str, body: Mapping[str, Any]) -> dict[str, float]:
    """token -> logprob for the top alternatives of the first generated token."""
    logprobs = first_choice(body).get("logprobs")
    if not isinstance(logprobs, Mapping):
        raise ValueError("the server returned no logprobs (does it support top_logprobs?)")
    if endpoint == "chat":
        content = logprobs.get("content")
        if not isinstance(content, list) or not content:
            raise ValueError("the server returned no logprobs for the first token")
        return {str(t["token"]): float(t["logprob"]) for t in content[0].get("top_logprobs") or []}
    top = logprobs.get("top_logprobs")
    if not isinstance(top, list) or not top or not isinstance(top[0], Mapping):
        raise ValueError("the server returned no top logprobs for the first token")
    return {str(k): float(v) for k, v in top[0].items()}


def choice_scores(alternatives: Mapping[str, float], choices: Sequence[str]) -> tuple[tuple[float, ...], list[str]]:
    """Log-probability of each choice as the first answer token, and the choices not seen.

    Tokens that differ only by surrounding whitespace (" A", "A") are one answer: their
    probabilities add up. A choice absent from the top list gets the lowest listed
    logprob, an upper bound on its true value (recorded by the caller as `not_in_top`)."""
    if not alternatives:
        raise ValueError("the server returned an empty top-logprobs list")
    floor = min(alternatives.values())
    scores, missing = [], []
    for choice in choices:
        matches = [lp for tok, lp in alternatives.items() if tok.strip() == choice.strip()]
        if matches:
            top = max(matches)
            scores.append(top + math.log(sum(math.exp(lp - top) for lp in matches)))
        else:
            scores.append(floor)
            missing.append(choice)
    return tuple(scores), missing


def echo_loglikelihood(body: Mapping[str, Any], context_chars: int) -> tuple[float, bool, int]:
    """(sum of continuation logprobs, is_greedy, continuation tokens) from an echo response.

    A token belongs to the continuation when it starts at or after the context's end."""
    logprobs = first_choice(body).get("logprobs")
    if not isinstance(logprobs, Mapping):
        raise ValueError("echo response has no logprobs")
    offsets = logprobs.get("text_offset") or []
    token_lps = logprobs.get("token_logprobs") or []
    tokens = logprobs.get("tokens") or []
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    if not (len(offsets) == len(token_lps) == len(tokens)) or not tokens:
        raise ValueError("echo response logprobs are incomplete")
    total, greedy, count = 0.0, True, 0
    for offset, lp, token, top in zip(offsets, token_lps, tokens, tops, strict=False):
        if offset < context_chars:
            continue
        if lp is None:
            raise ValueError("echo response lacks a logprob for a continuation token")
        total += float(lp)
        count += 1
        if isinstance(top, Mapping) and top:
            greedy = greedy and max(top, key=lambda k: top[k]) == token
    if count == 0:
        raise ValueError("echo response has no continuation tokens")
    return total, greedy, count
