"""The gguf backend (llama-cpp-python) on the embedded SmolLM2 GGUF.

The reference for log-likelihoods is a fresh llama.cpp evaluation of each whole sequence
(no KV reuse), read the documented way: the logits row *before* each token.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path
from typing import Any

import llama_cpp  # noqa: E402  (installed by .ci/setup.sh: a missing one must fail, not skip)
import pytest

from evalkit.errors import ConfigError  # noqa: E402
from evalkit.models import create_backend, parse_model_spec  # noqa: E402
from evalkit.types import GenerateRequest, GenerationParams, LoglikelihoodRequest, Message  # noqa: E402

FEWSHOT = ("The following are multiple choice questions (with answers) about geography.\n\n"
           "What is the capital of Italy?\nA. Rome\nB. Oslo\nC. Lima\nD. Kiev\nAnswer: A\n\n")


@pytest.fixture(scope="module")
def gguf() -> Any:
    b = create_backend(parse_model_spec("gguf:smollm2", {"n_ctx": "1024"}))
    yield b
    asyncio.run(b.aclose())


def requests() -> list[LoglikelihoodRequest]:
    out = []
    for question in ("What is the capital of France?", "Which planet is red?"):
        prompt = FEWSHOT + f"{question}\nA. Paris\nB. Mars\nC. Berlin\nD. Venus\nAnswer:"
        out += [LoglikelihoodRequest(prompt, f" {x}") for x in "ABCD"]
        out += [LoglikelihoodRequest(prompt, f" {x} is the answer") for x in ("Paris", "Mars")]
    out.append(LoglikelihoodRequest("The capital of France is ", "Paris"))
    return out


def fresh_score(llm: Any, r: LoglikelihoodRequest) -> float:
    import numpy as np

    llm.reset()  # evaluate the whole sequence from scratch: no KV reuse
    context, continuation = r.context.rstrip(), r.context[len(r.context.rstrip()):] + r.continuation
    ctx = llm.tokenize(context.encode(), add_bos=True)
    cont = llm.tokenize((context + continuation).encode(), add_bos=True)[len(ctx):]
    llm.eval(ctx + cont[:-1])
    rows = np.asarray(llm.scores[len(ctx) - 1 : len(ctx) + len(cont) - 1], dtype=np.float64)
    logz = np.log(np.exp(rows - rows.max(1, keepdims=True)).sum(1)) + rows.max(1)
    return float(sum(rows[i, t] - logz[i] for i, t in enumerate(cont)))


@pytest.mark.slow
def test_loglikelihood_matches_a_fresh_evaluation(gguf: Any) -> None:
    reqs = requests()
    got = asyncio.run(gguf.loglikelihood(reqs))
    fresh = llama_cpp.Llama(model_path=str(gguf.path), n_ctx=1024, logits_all=True, verbose=False)
    try:
        for r, res in zip(reqs, got, strict=True):
            assert res.logprob == pytest.approx(fresh_score(fresh, r), abs=2e-3)
            assert res.num_tokens >= 1
    finally:
        fresh.close()


@pytest.mark.slow
def test_order_is_restored(gguf: Any) -> None:
    reqs = requests()
    base = dict(zip(reqs, (r.logprob for r in asyncio.run(gguf.loglikelihood(reqs))), strict=True))
    shuffled = reqs[:]
    random.Random(1).shuffle(shuffled)
    for r, res in zip(shuffled, asyncio.run(gguf.loglikelihood(shuffled)), strict=True):
        assert res.logprob == pytest.approx(base[r], abs=2e-3)


@pytest.mark.slow
def test_generate_chat_stop_and_max_tokens(gguf: Any) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    question = (Message("user", "What is the capital of France?"),)
    chat = GenerateRequest(question, GenerationParams(max_tokens=16))
    raw = GenerateRequest("The capital of France is", GenerationParams(max_tokens=5))
    a, b = asyncio.run(gguf.generate([chat, raw]))
    assert a.text and b.usage is not None and 1 <= b.usage.completion_tokens <= 5
    # the GGUF's chat template was applied: llama.cpp's own greedy completion of the rendered prompt
    llm = gguf.llm
    formatter = Jinja2ChatFormatter(gguf.chat_template, eos_token=llm.detokenize([llm.token_eos()]).decode(),
                                    bos_token=llm.detokenize([llm.token_bos()]).decode())
    rendered = formatter(messages=[m.to_dict() for m in question]).prompt
    assert rendered.endswith("<|im_start|>assistant\n")
    assert llm.create_completion(prompt=rendered, max_tokens=16, temperature=0.0)["choices"][0]["text"] == a.text
    stop = a.text.strip()[3:6]
    [c] = asyncio.run(gguf.generate([GenerateRequest(question, GenerationParams(max_tokens=16, stop=(stop,)))]))
    assert c.text == a.text[: a.text.find(stop)]


@pytest.mark.slow
def test_fingerprint_hashes_the_weights(gguf: Any) -> None:
    digest = hashlib.sha256(Path(gguf.path).read_bytes()).hexdigest()
    fp = gguf.fingerprint()
    assert fp["weights_sha256"] == digest and fp["backend"] == "gguf" and fp["chat_template_sha256"]


def test_bad_spec_and_options_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        create_backend(parse_model_spec(f"gguf:{tmp_path / 'nope.gguf'}"))
    with pytest.raises(ConfigError, match="n_ctx"):
        create_backend(parse_model_spec("gguf:smollm2", {"n_ctx": "-3"}))
    with pytest.raises(ConfigError, match="unknown option"):
        create_backend(parse_model_spec("gguf:smollm2", {"temperature": "1"}))
