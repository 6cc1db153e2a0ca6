"""The `hf:` backend: a causal LM through transformers, on CUDA when present, else CPU.

Spec: `hf:<dir | hub id | file.gguf | embedded name>`, options via --model-args:
  dtype=auto|float32|bfloat16|float16   default auto: bf16 on CUDA with bf16 support or on
                                        CPUs with native bf16 (avx512_bf16 / amx_bf16), else fp32
  batch_size=N       sequences per forward pass (default 16; short rows are packed ~256 tokens
                     to a sequence); results do not depend on it
  gen_batch_size=N   rows decoded together (continuous batching; default auto: 32 rows, more
                     for short rows, up to 256 within a 16k-token K/V budget); sampled texts do
                     not depend on it (up to fp near-ties)
  device=cpu|cuda    default: cuda if available
  scoring=packed|plain   packed (default): shared contexts computed once; plain: one row per request
  max_length=N       context window (default: the model's)
  revision=REV       hub revision

A GGUF (an embedded model's or a file's) is dequantised once into a cached HF directory
(evalkit.backends.embedded), so later loads take seconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.backends.base import BaseBackend, reject_unknown_options
from evalkit.backends.embedded import (
    convert_gguf_to_hf,
    file_sha256,
    files_sha256,
    hf_dir,
    is_embedded,
    models_dir,
)
from evalkit.backends.spec import BackendInfo, Option, fixed
from evalkit.errors import BackendUnavailable, ConfigError
from evalkit.models import ModelSpec
from evalkit.types import (
    EMBED,
    GENERATE,
    LOGLIKELIHOOD,
    LOGLIKELIHOOD_ROLLING,
    EmbedRequest,
    GenerateRequest,
    LoglikelihoodRequest,
    Response,
    RollingLoglikelihoodRequest,
)

OPTIONS = {"dtype", "batch_size", "gen_batch_size", "device", "scoring", "max_length", "revision"}
#: bump when generation changes what a request returns (the seed streams, the stop rules)
GENERATION_VERSION = "slots-v1"
DTYPES = {"float32", "bfloat16", "float16"}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_dtype(requested: str, device: str) -> tuple[str, str]:
    """(dtype, why) for the run log."""
    import torch

    if requested != "auto":
        return requested, "requested"
    if device.startswith("cuda"):
        if torch.cuda.is_bf16_supported():
            return "bfloat16", "auto: CUDA with bf16 support"
        return "float32", "auto: CUDA without bf16 support"
    if cpu_has_fast_bf16():
        return "bfloat16", "auto: CPU has avx512_bf16/amx_bf16"
    return "float32", "auto: CPU without native bf16"


def resolve_source(target: str, revision: str | None) -> tuple[str, str]:
    """(where to load from, what kind: embedded | dir | gguf | hub)."""
    if is_embedded(target):
        return str(hf_dir(target)), "embedded"
    path = Path(target).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"--model hf:{target}: {path} has no config.json (not a transformers model dir)")
        return str(path), "dir"
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(f"--model hf:{target}: GGUF file {path} does not exist")
        digest = file_sha256(path)
        out = models_dir() / f"{path.stem}-hf-{digest[:12]}"
        if not (out / "config.json").is_file():
            convert_gguf_to_hf(path, out)
        return str(out), "gguf"
    if path.exists() or target.startswith((".", "/", "~")) or target.count("/") > 1:
        raise ConfigError(f"--model hf:{target}: not a model directory, a .gguf file or a hub id")
    return target, "hub"


class HFBackend(BaseBackend):
    capabilities = frozenset({GENERATE, LOGLIKELIHOOD, EMBED, LOGLIKELIHOOD_ROLLING})
    chunk_size = 128
    max_concurrent_chunks = 1

    def __init__(self, spec: ModelSpec) -> None:
        try:
            import torch
            import transformers  # noqa: F401
        except ImportError:
            raise BackendUnavailable("the hf backend needs torch and transformers: pip install 'evalkit[hf]'") from None
        options = dict(spec.options)
        reject_unknown_options("hf", options, OPTIONS)
        self.spec = spec
        self.device = options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        requested = options.get("dtype", "auto")
        if requested not in DTYPES | {"auto"}:
            raise ConfigError(f"--model-args dtype={requested!r}: expected auto, {', '.join(sorted(DTYPES))}")
        self.dtype, self.dtype_reason = choose_dtype(requested, self.device)
        self.batch_size = _positive_int(options, "batch_size", 16)
        # None: sized per batch of requests (evalkit.backends.hf_generate.auto_capacity)
        self.gen_batch_size: int | None = (_positive_int(options, "gen_batch_size", 32)
                                           if "gen_batch_size" in options else None)
        self.scoring = options.get("scoring", "packed")
        if self.scoring not in ("packed", "plain"):
            raise ConfigError(f"--model-args scoring={self.scoring!r}: expected packed or plain")
        self.revision = options.get("revision")
        self.source, self.source_kind = resolve_source(spec.target, self.revision)
        self._load(options)

    def _load(self, options: dict[str, str]) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from evalkit.backends.hf_scoring import LoglikelihoodScorer

        kwargs: dict[str, Any] = {"revision": self.revision} if self.revision else {}
        self.tokenizer: Any
        self.model: Any
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(
                self.source, dtype=self.dtype, attn_implementation="sdpa", **kwargs)
        except OSError as exc:
            raise ConfigError(f"--model {self.spec.raw!r}: cannot load ({str(exc).splitlines()[0]})") from None
        self.model.to(self.device).eval()
        config = self.model.config.get_text_config()
        self.max_length = _positive_int(options, "max_length", int(getattr(config, "max_position_embeddings", 2048)))
        sliding = getattr(config, "sliding_window", None) and "sliding_attention" in (
            getattr(config, "layer_types", None) or ["sliding_attention"])
        self.pack = self.scoring == "packed" and not sliding
        self.scorer = LoglikelihoodScorer(self.model, batch_size=self.batch_size,
                                          max_length=self.max_length, pack=self.pack)
        bos = self.tokenizer.bos_token_id
        self.prefix_token_id = bos if bos is not None else self.tokenizer.eos_token_id
        self._fingerprint = self._compute_fingerprint()

    # --- identity ----------------------------------------------------------------------------

    def _compute_fingerprint(self) -> dict[str, Any]:
        if self.source_kind == "hub":
            weights = {"hub_id": self.source, "revision": getattr(self.model.config, "_commit_hash", None)
                       or self.revision or "unknown"}
        else:
            files = [p for p in Path(self.source).iterdir() if p.name.endswith(WEIGHT_SUFFIXES)]
            weights = {"sha256": files_sha256(files)}
        template = getattr(self.tokenizer, "chat_template", None) or ""
        return {
            "backend": "hf",
            "model": self.spec.target,
            "weights": weights,
            "tokenizer_sha256": tokenizer_digest(self.tokenizer),
            "chat_template_sha256": hashlib.sha256(str(template).encode()).hexdigest(),
            "dtype": self.dtype,
            "tokenization": "lm-eval HFLM",
            "generation": GENERATION_VERSION,
        }

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        import torch
        import transformers

        return {
            "backend": "hf",
            "source": self.source,
            "source_kind": self.source_kind,
            "device": self.device,
            "dtype": self.dtype,
            "dtype_reason": self.dtype_reason,
            "batch_size": self.batch_size,
            "gen_batch_size": self.gen_batch_size or "auto",
            "generation": "continuous batching, one prompt pass per distinct prompt, per-sample seeded streams",
            "scoring": "packed (shared contexts once)" if self.pack else "plain (one row per request)",
            "max_length": self.max_length,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "torch_threads": torch.get_num_threads(),
        }

    # --- requests ----------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """lm-eval's tok_encode: default special tokens, unless the text already starts with BOS."""
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        return list(self.tokenizer.encode(text, add_special_tokens=add_special))

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[Response]:
        from evalkit.backends.hf_scoring import lm_eval_encode_pair

        pairs = [lm_eval_encode_pair(self.encode, r.context, r.continuation, self.prefix_token_id)
                 for r in requests]
        scored = self.scorer.score(pairs)
        return [Response(logprob=lp, is_greedy=greedy, num_tokens=len(cont))
                for (lp, greedy), (_, cont) in zip(scored, pairs, strict=True)]

    async def loglikelihood_rolling(self, requests: Sequence[RollingLoglikelihoodRequest]) -> list[Response]:
        """Each text's summed log-likelihood over rolling windows (evalkit.backends.rolling),
        every window of every text scored in one batch by the log-likelihood scorer."""
        from evalkit.backends.rolling import rolling_windows

        windows = [rolling_windows(self.tokenizer.encode(r.text, add_special_tokens=False), self.prefix_token_id,
                                   min(r.max_length, self.max_length), min(r.stride, r.max_length, self.max_length))
                   for r in requests]
        scored = iter(self.scorer.score([w for text in windows for w in text]))
        out = []
        for text in windows:
            parts = [next(scored) for _ in text]
            out.append(Response(logprob=sum(lp for lp, _ in parts), is_greedy=all(g for _, g in parts),
                                num_tokens=sum(len(cont) for _, cont in text)))
        return out

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]:
        from evalkit.backends.hf_generate import generate_batch

        return generate_batch(self, requests)

    async def embed(self, requests: Sequence[EmbedRequest]) -> list[Response]:
        import torch

        out: list[Response] = []
        with torch.inference_mode():
            for start in range(0, len(requests), self.batch_size):
                batch = [self.encode(r.text) or [self.prefix_token_id] for r in requests[start : start + self.batch_size]]
                width = max(len(t) for t in batch)
                ids = torch.zeros(len(batch), width, dtype=torch.long)
                mask = torch.zeros(len(batch), width, dtype=torch.long)
                for i, toks in enumerate(batch):
                    ids[i, : len(toks)] = torch.tensor(toks)
                    mask[i, : len(toks)] = 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                hidden = self.model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                out.extend(Response(vector=tuple(v)) for v in pooled.tolist())
        return out

    async def aclose(self) -> None:
        self.model = None
        self.scorer = None  # type: ignore[assignment]


def tokenizer_digest(tokenizer: Any) -> str:
    """A hash of everything that decides token ids: vocabulary, merges, normaliser, specials."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        body = backend.to_str()
    else:
        body = repr(sorted(tokenizer.get_vocab().items()))
    specials = repr(sorted((k, str(v)) for k, v in tokenizer.special_tokens_map.items()))
    h = hashlib.sha256(body.encode("utf-8"))
    h.update(specials.encode("utf-8"))
    return h.hexdigest()


def _positive_int(options: dict[str, str], name: str, default: int) -> int:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"--model-args {name}={raw!r}: expected a positive integer")
    return value


def create(spec: ModelSpec) -> HFBackend:
    return HFBackend(spec)


INFO = BackendInfo(
    "hf", "transformers (CUDA if present, else CPU)", "evalkit.backends.hf:create", "hf:DIR|HUB_ID|NAME",
    fixed(GENERATE, LOGLIKELIHOOD, EMBED, LOGLIKELIHOOD_ROLLING),
    options=(
        Option("dtype", str, "auto", "auto (bf16 on CUDA or CPUs with native bf16, else fp32), float32, bfloat16, float16"),
        Option("batch_size", int, 16, "rows per forward pass (log-likelihood scoring)"),
        Option("gen_batch_size", int, "auto", "rows decoded together (continuous batching; auto: 32, more for "
               "short rows within a 16k-token K/V budget, at most 256)"),
        Option("device", str, "", "cuda or cpu (default: cuda if available)"),
        Option("scoring", str, "packed", "packed (shared contexts computed once) or plain (one row per request)"),
        Option("max_length", int, "", "context window (default: the model's)"),
        Option("revision", str, "", "hub revision"),
    ),
    extra="hf", probe="transformers",
)
