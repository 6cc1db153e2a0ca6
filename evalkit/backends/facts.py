"""What a model spec tells before any model loads: whether the model has a chat template
(tasks with `chat=auto` pick their prompt form by it) and which capabilities its backend
declares (roles and tasks are checked against them before anything is loaded).

Local files are read only as far as needed: a GGUF's metadata header, an HF directory's
tokenizer_config.json. A hub id is not fetched here: it counts as having no template.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO

from evalkit.models import EMBEDDED_MODELS, ModelSpec, backend_info
from evalkit.params import ModelFacts

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
#: GGUF value types with a fixed size (bytes) -> struct format
_FIXED = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def model_facts(spec: ModelSpec) -> ModelFacts:
    info = backend_info(spec.backend)
    chat, reason = info.chat(spec) if info.chat else local_chat_template(spec.target)
    return ModelFacts(chat, info.capabilities(spec.options), reason)


def local_chat_template(target: str) -> tuple[bool, str]:
    """(has a chat template, why) for an embedded name, a GGUF file or an HF directory."""
    if target in EMBEDDED_MODELS:
        model = EMBEDDED_MODELS[target]
        return model.chat, f"embedded {target}: {'instruct model with' if model.chat else 'base model without'} a chat template"
    path = Path(target)
    if path.is_file():
        template = gguf_string(path, CHAT_TEMPLATE_KEY)
        return bool(template), f"{path.name}: {'has' if template else 'has no'} {CHAT_TEMPLATE_KEY}"
    if path.is_dir():
        return _hf_dir_chat_template(path)
    return False, f"{target}: not a local file or directory, so its chat template is unknown (use -T chat=true)"


def _hf_dir_chat_template(path: Path) -> tuple[bool, str]:
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True, f"{path}: has a chat template file"
    config = path / "tokenizer_config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    except (OSError, ValueError):
        data = {}
    found = bool(isinstance(data, dict) and data.get("chat_template"))
    return found, f"{config}: {'has' if found else 'has no'} chat_template"


def gguf_problem(path: Path) -> str | None:
    """Why `path` cannot be a GGUF model (missing, not GGUF, a damaged header), or None."""
    if not path.exists():
        return f"GGUF file {path} does not exist"
    if not path.is_file():
        return f"{path} is not a file"
    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                return f"{path} is not a GGUF file (it does not start with the GGUF magic)"
            version, _tensors, count = struct.unpack("<IQQ", fh.read(20))
            for _ in range(count):
                _read_str(fh)
                (kind,) = struct.unpack("<I", fh.read(4))
                _skip_value(fh, kind)
            if fh.tell() > path.stat().st_size:
                raise ValueError("metadata runs past the end of the file")
    except OSError as exc:
        return f"{path}: cannot read it ({exc.strerror or exc})"
    except (struct.error, UnicodeDecodeError, ValueError):
        return f"{path} is a truncated or damaged GGUF file (its metadata header cannot be read)"
    return None


def gguf_string(path: Path, key: str) -> str | None:
    """A string value from a GGUF file's metadata, or None (also for files that are not GGUF)."""
    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                return None
            version, _tensors, count = struct.unpack("<IQQ", fh.read(20))
            if version < 2:
                return None
            for _ in range(count):
                name = _read_str(fh)
                (kind,) = struct.unpack("<I", fh.read(4))
                if name == key and kind == _STRING:
                    return _read_str(fh)
                _skip_value(fh, kind)
    except (OSError, struct.error, UnicodeDecodeError, ValueError):
        return None
    return None


def _read_str(fh: BinaryIO) -> str:
    (length,) = struct.unpack("<Q", fh.read(8))
    if length > 1 << 30:
        raise ValueError("implausible GGUF string length")
    return fh.read(length).decode("utf-8")


def _skip_value(fh: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        fh.seek(struct.calcsize("<" + _FIXED[kind]), 1)
    elif kind == _STRING:
        (length,) = struct.unpack("<Q", fh.read(8))
        fh.seek(length, 1)
    elif kind == _ARRAY:
        item_kind, count = struct.unpack("<IQ", fh.read(12))
        if item_kind in _FIXED:
            fh.seek(count * struct.calcsize("<" + _FIXED[item_kind]), 1)
        else:
            for _ in range(count):
                _skip_value(fh, item_kind)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")
