"""Asking the judge: greedy text verdicts with one re-ask, or first-token probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evalkit.judges.templates import Template
from evalkit.judges.verdicts import (
    PAIR_TOKENS,
    parse_pair,
    parse_rating,
    prob_verdict,
    reask_prompt,
)
from evalkit.task import ScoreContext
from evalkit.types import (
    ChoiceLogprobsRequest,
    GenerateRequest,
    GenerationParams,
    Message,
    Request,
    Response,
    tag_requests,
)


@dataclass(frozen=True)
class Asked:
    """What the judge said: the verdict (None on failure), its extras, every request and raw
    response (the re-ask too), and why there is no verdict. A failed request is `transient`
    (the record is an error, retried by the next run); an unreadable verdict is final (kept,
    counted as a failure, never scored)."""

    verdict: Any
    requests: list[Request]
    responses: list[Response]
    extras: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    transient: bool = False


def judge_request(messages: tuple[Message, ...], max_tokens: int) -> GenerateRequest:
    return GenerateRequest(messages, GenerationParams(max_tokens=max_tokens, temperature=0.0))


def _parse(template: Template, text: str) -> Any:
    if template.verdict == "rating":
        return parse_rating(text, template.scale)
    return parse_pair(text)


async def ask_text(messages: tuple[Message, ...], template: Template, max_tokens: int, ctx: ScoreContext) -> Asked:
    """(verdict, extras, requests, responses, error). An unreadable verdict is asked again once
    (the judge's own output, then "answer with ... only"); still unreadable: an error."""
    kind = "rating" if template.verdict == "rating" else "pair"
    requests: list[Request] = list(tag_requests([judge_request(messages, max_tokens)], ctx.sample_id, ctx.seed))
    responses = list(await ctx.execute("judge", requests))
    if not responses[0].ok:
        return Asked(None, requests, responses, failure=f"judge request failed: {responses[0].error}", transient=True)
    verdict = _parse(template, responses[0].text or "")
    if verdict is None:
        (follow_up,) = tag_requests([judge_request(reask_prompt(messages, responses[0].text or "", kind), max_tokens)],
                                    ctx.sample_id, ctx.seed)  # logged as sent
        requests.append(follow_up)
        responses.extend(await ctx.execute("judge", [follow_up]))
        if not responses[-1].ok:
            return Asked(None, requests, responses, failure=f"judge re-ask failed: {responses[-1].error}",
                             transient=True)
        verdict = _parse(template, responses[-1].text or "")
    if verdict is None:
        raw = (responses[-1].text or "")[:200]
        return Asked(None, requests, responses, {"attempts": len(responses)},
                     f"unparseable verdict after a re-ask: {raw!r}")
    return Asked(verdict, requests, responses, {"attempts": len(responses)})


async def ask_prob(messages: tuple[Message, ...] | str, ctx: ScoreContext) -> Asked:
    """The verdict from P("A"), P("B"), P("C") as the first token; a failure when those three
    carry less than half the probability."""
    requests: list[Request] = [ChoiceLogprobsRequest(messages, PAIR_TOKENS)]
    responses = list(await ctx.execute("judge", requests))
    response = responses[0]
    if not response.ok or response.choice_logprobs is None:
        return Asked(None, requests, responses, failure=f"judge request failed: {response.error}", transient=True)
    return _from_logprobs(requests, responses)


def _from_logprobs(requests: list[Request], responses: list[Response]) -> Asked:
    response = responses[0]
    assert response.choice_logprobs is not None
    missing = tuple(str(t) for t in response.meta.get("not_in_top", ()))
    pv = prob_verdict(response.choice_logprobs, missing)
    extras: dict[str, Any] = {"p_a": pv.p_a, "p_b": pv.p_b, "p_tie": pv.p_tie, "mass": pv.mass,
                              "not_in_top": list(missing), "attempts": 1}
    if not pv.ok:
        return Asked(None, requests, responses, extras,
                     f"verdict tokens carry {pv.mass:.3f} of the probability (less than half): no verdict")
    return Asked(pv.verdict, requests, responses, {**extras, "score_first": pv.score_first})


def reread(template: Template, requests: list[Request], responses: list[Response]) -> Asked | None:
    """The verdict read again from stored outputs, with no judge call (`evalkit score`); None
    when a request had failed (that judgment is left for a rerun of `evalkit judge`)."""
    if not responses or any(not r.ok for r in responses):
        return None
    if responses[0].choice_logprobs is not None:
        return _from_logprobs(requests, responses)
    for attempt, response in enumerate(responses, start=1):
        verdict = _parse(template, response.text or "")
        if verdict is not None:
            return Asked(verdict, requests, responses, {"attempts": attempt})
    raw = (responses[-1].text or "")[:200]
    return Asked(None, requests, responses, {"attempts": len(responses)}, f"unparseable verdict after a re-ask: {raw!r}")
