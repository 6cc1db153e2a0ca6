"""lm-eval `Instance`s as evalkit requests, and evalkit responses as lm-eval `resps`.

loglikelihood and multiple_choice instances are `(context, continuation)` log-likelihood
requests; generate_until instances are completion requests with lm-eval's `until`,
`max_gen_toks` and sampling settings. loglikelihood_rolling has no evalkit request kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.errors import ConfigError
from evalkit.types import (
    GENERATE,
    LOGLIKELIHOOD,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Request,
    Response,
)

#: lm-eval's output types evalkit runs, and the capability each needs from the backend
CAPABILITY = {"multiple_choice": LOGLIKELIHOOD, "loglikelihood": LOGLIKELIHOOD, "generate_until": GENERATE}
#: lm-eval's hf model generates this many tokens when a task gives no max_gen_toks
DEFAULT_MAX_GEN_TOKS = 256


def capability_of(task_name: str, output_type: str) -> str:
    if output_type not in CAPABILITY:
        raise ConfigError(f"lm-eval task {task_name!r}: output_type {output_type!r} is not supported by evalkit "
                          f"(supported: {', '.join(sorted(CAPABILITY))}); run it with lm_eval itself")
    return CAPABILITY[output_type]


def generation_params(gen_kwargs: Mapping[str, Any]) -> GenerationParams:
    """lm-eval's gen_kwargs as evalkit's: greedy unless do_sample (lm-eval's default rule)."""
    until = gen_kwargs.get("until") or ()
    stops = (until,) if isinstance(until, str) else tuple(str(u) for u in until)
    temperature = float(gen_kwargs.get("temperature", 0.0) or 0.0)
    do_sample = bool(gen_kwargs.get("do_sample", temperature > 0.0))
    return GenerationParams(
        max_tokens=int(gen_kwargs.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS)),
        temperature=(temperature or 1.0) if do_sample else 0.0,
        top_p=float(gen_kwargs.get("top_p", 1.0) or 1.0) if do_sample else 1.0,
        stop=stops,
    )


def to_requests(instance: Any) -> list[Request]:
    """The evalkit requests of one instance: one per repeat for generation; a log-likelihood is
    deterministic, so one request answers all of an instance's repeats."""
    kind = instance.request_type
    if kind == "loglikelihood":
        context, continuation = instance.args
        return [LoglikelihoodRequest(str(context), str(continuation))]
    if kind == "generate_until":
        context, gen_kwargs = instance.args[0], instance.args[1]
        if not isinstance(context, str):
            raise ConfigError(f"lm-eval task {instance.task_name!r}: chat-formatted contexts are not supported")
        params = generation_params(gen_kwargs or {})
        return [GenerateRequest(context, params, repeat=i) for i in range(max(1, instance.repeats))]
    raise ConfigError(f"lm-eval request type {kind!r} is not supported by evalkit")


def attach_responses(instances: Sequence[Any], responses: Sequence[Response]) -> None:
    """Fill each instance's `resps` the way lm-eval's evaluator does (one entry per repeat)."""
    pos = 0
    for instance in instances:
        count = len(to_requests(instance))
        answers = responses[pos : pos + count]
        pos += count
        if instance.request_type == "loglikelihood":
            (answer,) = answers
            if answer.logprob is None:
                raise ValueError("a loglikelihood response has no logprob")
            instance.resps = [(float(answer.logprob), bool(answer.is_greedy))] * max(1, instance.repeats)
        else:
            instance.resps = [a.text if a.text is not None else "" for a in answers]
    if pos != len(responses):
        raise ValueError(f"{len(responses)} responses for {pos} requests")
