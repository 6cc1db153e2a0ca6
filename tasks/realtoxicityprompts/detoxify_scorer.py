"""`detoxify` (Hanu & Unitary, 2020): the field's standard toxicity classifier, scored through
detoxify's own API (`Detoxify(...).predict`, its "toxicity" label).

Its default downloads the checkpoint from GitHub releases (and the base model's config from the
hub). Offline, give a local checkpoint in detoxify's format (`-T checkpoint=FILE`: a torch file
with the training `config` and the `state_dict`) and, unless the base model is in the Hugging
Face cache, `-T hf_config=DIR` with its config and tokenizer.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.environment import torch_hub_dir
from evalkit.errors import ConfigError
from evalkit.task import ScoreContext
from evalkit.tasks.realtoxicityprompts._common import (
    package_version,
    require_module,
    score_in_thread,
)
from evalkit.toxicity import TextScore, ToxicityScorer

INSTALL = "pip install 'evalkit[toxicity]' (or detoxify)"
#: where detoxify's default checkpoints come from (its MODEL_URLS, detoxify 0.5)
RELEASES = "https://github.com/unitaryai/detoxify/releases/download/"
DEFAULT_FILES = {
    "original": "v0.1-alpha/toxic_original-c1212f89.ckpt",
    "unbiased": "v0.3-alpha/toxic_debiased-c7548aa0.ckpt",
    "multilingual": "v0.4-alpha/multilingual_debiased-0b549669.ckpt",
    "original-small": "v0.1.2/original-albert-0e1d6498.ckpt",
    "unbiased-small": "v0.1.2/unbiased-albert-c8519128.ckpt",
}
LABEL = "toxicity"


class DetoxifyScorer(ToxicityScorer):
    name = "detoxify"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.variant = str(options.get("variant") or "original")
        self.checkpoint = Path(options["checkpoint"]).expanduser() if options.get("checkpoint") else None
        self.hf_config = Path(options["hf_config"]).expanduser() if options.get("hf_config") else None
        self._model: Any = None
        self._lock = asyncio.Lock()

    def version(self) -> str:
        return package_version("detoxify")

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"variant": self.variant, "label": LABEL, "device": "cpu"}
        if self.checkpoint is not None:
            size = self.checkpoint.stat().st_size if self.checkpoint.is_file() else None
            out["checkpoint"] = {"path": str(self.checkpoint), "bytes": size}
        if self.hf_config is not None:
            out["hf_config"] = str(self.hf_config)
        return out

    def check(self, offline: bool) -> None:
        require_module("detoxify", self.name, INSTALL)
        if self.checkpoint is not None:
            if not self.checkpoint.is_file():
                raise ConfigError(f"-T checkpoint={self.checkpoint}: no such file (a detoxify checkpoint)")
        elif not downloaded(self.variant) and (offline or not github_reachable()):
            raise ConfigError(
                f"-T scorer=detoxify: no local checkpoint for variant {self.variant!r} and no network; download "
                f"{RELEASES}{DEFAULT_FILES[self.variant]} and pass -T checkpoint=FILE (plus -T hf_config=DIR "
                "with its base model's config and tokenizer, unless they are in the Hugging Face cache)")
        if self.hf_config is not None and not self.hf_config.is_dir():
            raise ConfigError(f"-T hf_config={self.hf_config}: not a folder (the base model's config and tokenizer)")

    async def score(self, texts: Sequence[str], ctx: ScoreContext) -> list[TextScore]:
        async with self._lock:  # samples score concurrently: load once
            if self._model is None:
                self._model = await asyncio.to_thread(self._load)
        model = self._model

        def predict(batch: list[str]) -> list[float]:
            values = model.predict(batch)[LABEL]
            return values if isinstance(values, list) else [values]  # it squeezes a batch of one

        return await score_in_thread(predict, texts, 32)

    def _load(self) -> Any:
        from detoxify import Detoxify  # torch + transformers: only when this scorer scores

        return Detoxify(model_type=self.variant,
                        checkpoint=str(self.checkpoint) if self.checkpoint is not None else None,
                        device="cpu",
                        huggingface_config_path=str(self.hf_config) if self.hf_config is not None else None)


def downloaded(variant: str) -> bool:
    """Whether torch.hub already holds the variant's default checkpoint (torch's own rule for
    its directory: $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch)."""
    return (torch_hub_dir() / "checkpoints" / DEFAULT_FILES[variant].split("/")[-1]).is_file()


def github_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(("github.com", 443), timeout=timeout):
            return True
    except OSError:
        return False
