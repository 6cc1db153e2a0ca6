"""The environment variables a task may depend on, read here and nowhere in tasks: secrets
(an API key is never a `-T` parameter, which is logged) and standard cache folders. Run
settings come from the command line only, so a log says everything that changed a result."""

from __future__ import annotations

import os
from pathlib import Path


def secret(name: str) -> str:
    """An API key from the environment ("" when unset); callers must never log it."""
    return os.environ.get(name, "")


def torch_hub_dir() -> Path:
    """torch.hub's folder by torch's own rule: $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(home) / "hub"
