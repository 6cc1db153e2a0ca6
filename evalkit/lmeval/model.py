"""evalkit's backends inside lm-eval: the lm-eval model class `evalkit`.

`--model evalkit --model_args spec=hf:smollm2,dtype=float32` answers lm-eval's requests with
any evalkit backend (shared-context scoring, GGUF, the API backend's adaptive concurrency and
retries) through evalkit's Engine and response cache. Every other model arg is one of the
backend's `--model-args` (`evalkit list models --options`); `cache_dir=DIR` chooses the
response cache (default: evalkit's), `cache_dir=none` turns it off. lm-eval 0.4.13 discovers
no model plugins, so `python -m evalkit.lmeval ...` registers this class and runs lm-eval's CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from evalkit.cache import ResponseCache, default_cache_dir
from evalkit.engine import Engine
from evalkit.errors import ConfigError
from evalkit.lmeval.convert import generation_params
from evalkit.models import create_backend, parse_model_spec
from evalkit.types import GenerateRequest, LoglikelihoodRequest, Request, Response

#: requests handed to the engine at once (the backend batches inside)
WINDOW = 512


@register_model("evalkit")
class EvalkitLM(LM):  # type: ignore[misc]  # lm-eval is untyped
    def __init__(self, spec: str = "", cache_dir: str = "", batch_size: Any = None, max_batch_size: Any = None,
                 device: Any = None, **model_args: Any) -> None:
        super().__init__()
        if not spec:
            raise ConfigError("--model evalkit needs --model_args spec=SPEC (an evalkit model spec, e.g. hf:smollm2)")
        # lm-eval's --device and --batch_size (its CLI defaults them to cuda and 1) are not
        # forwarded: evalkit backends choose their own; give device=/batch_size= in --model_args
        options = {k: str(v) for k, v in model_args.items()}
        self.spec = parse_model_spec(spec, options)
        self.loop = asyncio.new_event_loop()  # one loop for the model's life (API clients keep theirs)
        self.backend = create_backend(self.spec)
        self.cache = None if str(cache_dir).lower() == "none" else ResponseCache(
            (Path(cache_dir) if cache_dir else default_cache_dir()) / "responses.sqlite")
        self.engine = Engine(self.backend, self.cache)

    def _execute(self, requests: Sequence[Request]) -> list[Response]:
        out: list[Response] = []
        for start in range(0, len(requests), WINDOW):
            out.extend(self.loop.run_until_complete(self.engine.execute(requests[start : start + WINDOW])))
        failed = next((r.error for r in out if r.error), None)
        if failed:
            raise RuntimeError(f"evalkit backend {self.spec.raw!r}: {failed}")
        return out

    def loglikelihood(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        asked = [LoglikelihoodRequest(str(r.args[0]), str(r.args[1])) for r in requests]
        return [(float(a.logprob or 0.0), bool(a.is_greedy)) for a in self._execute(asked)]

    def loglikelihood_rolling(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[float]:
        raise NotImplementedError("--model evalkit: loglikelihood_rolling (perplexity tasks) is not supported")

    def generate_until(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[str]:
        asked = [GenerateRequest(str(r.args[0]), generation_params(r.args[1] or {}), sample_id=f"{r.task_name}/{r.doc_id}")
                 for r in requests]
        return [a.text or "" for a in self._execute(asked)]

    def close(self) -> None:
        try:
            if self.cache is not None:
                self.cache.close()
        finally:
            self.loop.run_until_complete(self.backend.aclose())
            self.loop.close()
