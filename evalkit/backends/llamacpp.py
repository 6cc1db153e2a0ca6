"""The `gguf:` backend: a GGUF model through llama-cpp-python's Python API.

Spec: `gguf:<file.gguf | embedded name>`, options via --model-args:
  n_ctx=N       context window (default 4096, or the model's if smaller)
  n_threads=N   CPU threads (default: every core this process may use)
  n_batch=N     tokens per llama.cpp decode call (default 512)

Log-likelihoods come from `eval(tokens)` with `logits_all=True` and a log-softmax of the
logits row *before* each continuation token. (llama.cpp's OpenAI-compatible server with
`echo=True` reads each token's logprob from its own row, one position off: never used.)
Requests are scored in sorted order and the KV cache keeps the longest common prefix with
the previous request, so a question's choices and a subject's few-shot block are evaluated
once. Tokenization follows lm-eval's rules (see tokens.lm_eval_encode_pair).

llama-cpp-python must be built with safe CPU flags (README, .ci/setup.sh): its default
native build crashes on some of the CPUs evalkit runs on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.backends.base import BaseBackend, reject_unknown_options
from evalkit.backends.embedded import file_sha256, gguf_path, is_embedded
from evalkit.backends.spec import BackendInfo, Option, fixed
from evalkit.backends.tokens import common_prefix
from evalkit.errors import BackendUnavailable, ConfigError
from evalkit.models import ModelSpec
from evalkit.types import (
    GENERATE,
    LOGLIKELIHOOD,
    GenerateRequest,
    LoglikelihoodRequest,
    Response,
    Usage,
    prompt_to_json,
)

OPTIONS = {"n_ctx", "n_threads", "n_batch"}
DEFAULT_N_CTX = 4096
#: bump when generation changes what a request returns (seeds, stop rules)
GENERATION_VERSION = "seeded-by-sample-v1"


class LlamaCppBackend(BaseBackend):
    capabilities = frozenset({GENERATE, LOGLIKELIHOOD})
    # llama.cpp evaluates one sequence at a time; a modest chunk keeps cache writes frequent
    chunk_size = 64
    max_concurrent_chunks = 1

    def __init__(self, spec: ModelSpec) -> None:
        try:
            import llama_cpp
        except ImportError:
            raise BackendUnavailable(
                "the gguf backend needs llama-cpp-python built with safe CPU flags: run `bash .ci/setup.sh` "
                "(or see the README's 'Local models' section)") from None
        options = dict(spec.options)
        reject_unknown_options("gguf", options, OPTIONS)
        self.spec = spec
        self.path = gguf_path(spec.target) if is_embedded(spec.target) else Path(spec.target).expanduser()
        if not self.path.is_file():
            raise ConfigError(f"--model {spec.raw!r}: GGUF file {self.path} does not exist")
        self.n_threads = _int_option(options, "n_threads", len(os.sched_getaffinity(0)))
        self.n_batch = _int_option(options, "n_batch", 512)
        requested_ctx = _int_option(options, "n_ctx", DEFAULT_N_CTX)
        try:
            self.llm: Any = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=requested_ctx, n_threads=self.n_threads, n_batch=self.n_batch,
                logits_all=True, verbose=False, seed=0,
            )
        except ValueError as exc:  # llama.cpp's "Failed to load model from file": a damaged GGUF
            raise ConfigError(f"--model {spec.raw!r}: llama.cpp cannot load {self.path} ({exc})") from None
        self.n_ctx = self.llm.n_ctx()
        self.version = llama_cpp.__version__
        self.chat_template = str(self.llm.metadata.get("tokenizer.chat_template", ""))
        bos = self.llm.token_bos()
        self.prefix_token_id = bos if bos >= 0 else self.llm.token_eos()
        self._fingerprint = {
            "backend": "gguf",
            "model": spec.target,
            "weights_sha256": file_sha256(self.path),  # the tokenizer lives in the same file
            "chat_template_sha256": hashlib.sha256(self.chat_template.encode()).hexdigest(),
            "dtype": f"gguf file_type {self.llm.metadata.get('general.file_type', '?')}",
            "llama_cpp_python": self.version,
            "tokenization": "lm-eval HFLM rules",
            "generation": GENERATION_VERSION,
        }

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        return {"backend": "gguf", "path": str(self.path), "n_ctx": self.n_ctx, "n_threads": self.n_threads,
                "n_batch": self.n_batch, "llama_cpp_python": self.version,
                "generation": "one stream; a prompt's samples back to back (prefix cache)",
                "architecture": self.llm.metadata.get("general.architecture", "?")}

    def encode(self, text: str) -> list[int]:
        # add_bos=True adds BOS only when the model's metadata asks for it (as HF tokenizers do)
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Response]:
        from evalkit.backends.tokens import lm_eval_encode_pair  # no torch: the gguf extra has none

        pairs = [lm_eval_encode_pair(self.encode, r.context, r.continuation, self.prefix_token_id)
                 for r in requests]
        out: list[Response] = [Response(error="not scored")] * len(pairs)
        # sorted token sequences put shared prefixes next to each other: the KV cache keeps them
        for i in sorted(range(len(pairs)), key=lambda i: pairs[i][0] + pairs[i][1]):
            ctx, cont = pairs[i]
            lp, greedy = self._score(list(ctx), list(cont))
            out[i] = Response(logprob=lp, is_greedy=greedy, num_tokens=len(cont))
        return out

    def _score(self, ctx: list[int], cont: list[int]) -> tuple[float, bool]:
        if not cont:
            return 0.0, True
        fed = (ctx + cont)[-(self.n_ctx + 1):][:-1]  # lm-eval's left truncation
        llm = self.llm
        keep = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), fed)
        if keep < len(fed):
            llm.n_tokens = keep  # eval() drops the KV cache beyond this point
            llm.eval(fed[keep:])
        start = len(fed) - len(cont)
        rows = np.asarray(llm.scores[start : len(fed)], dtype=np.float64)
        shifted = rows - rows.max(axis=1, keepdims=True)
        logprobs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        picked = logprobs[np.arange(len(cont)), cont]
        greedy = bool(np.all(rows.argmax(axis=1) == np.asarray(cont)))
        return float(picked.sum()), greedy

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]:
        # the k samples of a prompt run back to back: llama-cpp-python keeps the KV cache of the
        # longest common prefix with the previous call, so their prompt is evaluated once
        order = sorted(range(len(requests)), key=lambda i: str(prompt_to_json(requests[i].prompt)))
        out: list[Response] = [Response(error="not generated")] * len(requests)
        for i in order:
            out[i] = self._generate_one(requests[i])
        return out

    def _generate_one(self, request: GenerateRequest) -> Response:
        from evalkit.backends.sampling import sample_seed

        params = request.params
        prompt_key = str(prompt_to_json(request.prompt))
        kwargs: dict[str, Any] = {
            "max_tokens": params.max_tokens, "temperature": max(0.0, params.temperature), "top_p": params.top_p,
            "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0, "stop": list(params.stop) or None,
            # llama.cpp takes a 32-bit seed (0xFFFFFFFF means random); each sample its own (seed, sample id, repeat, prompt)
            "seed": sample_seed(params.seed, request.sample_id, request.repeat, prompt_key) & 0x7FFFFFFF,
        }
        if isinstance(request.prompt, str):
            result: Any = self.llm.create_completion(prompt=request.prompt, **kwargs)
            text = result["choices"][0]["text"]
        else:
            if not self.chat_template:
                return Response(error=f"model {self.spec.raw!r} has no chat template; send a str prompt instead")
            messages = [m.to_dict() for m in request.prompt]
            result = self.llm.create_chat_completion(messages=messages, **kwargs)
            text = result["choices"][0]["message"]["content"] or ""
        usage = result.get("usage") or {}
        return Response(text=text, usage=Usage(int(usage.get("prompt_tokens", 0)),
                                               int(usage.get("completion_tokens", 0))))

    async def aclose(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()


def _int_option(options: dict[str, str], name: str, default: int) -> int:
    raw = options.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"--model-args {name}={raw!r}: expected a positive integer")
    return int(raw)


def create(spec: ModelSpec) -> LlamaCppBackend:
    return LlamaCppBackend(spec)


INFO = BackendInfo(
    "gguf", "llama.cpp through llama-cpp-python", "evalkit.backends.llamacpp:create", "gguf:FILE|NAME",
    fixed(GENERATE, LOGLIKELIHOOD),
    options=(
        Option("n_ctx", int, DEFAULT_N_CTX, "context window"),
        Option("n_threads", int, "", "threads (default: the cores this process may use)"),
        Option("n_batch", int, 512, "prompt tokens per llama.cpp batch"),
    ),
    extra="gguf", probe="llama_cpp", check_target=lambda target: _target_problem(target),
)


def _target_problem(target: str) -> str | None:
    """A GGUF path is checked before anything loads (an embedded name is found later)."""
    if is_embedded(target):
        return None
    from evalkit.backends.facts import gguf_problem

    return gguf_problem(Path(target).expanduser())
