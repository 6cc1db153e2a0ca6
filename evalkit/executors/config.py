"""The executor options of a run (`--executor ray --ray-address ... --workers N ...`),
checked before anything loads. Importing this module never imports Ray."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from evalkit.errors import ConfigError

RAY_EXTRA_HINT = "--executor ray needs Ray: pip install 'evalkit[ray]'"


@dataclass(frozen=True)
class RayOptions:
    #: "local" starts a private cluster on 127.0.0.1; "auto" joins the cluster this machine
    #: belongs to; "HOST:PORT" or "ray://HOST:PORT" connects to one
    address: str = "local"
    workers: int = 2
    #: GPUs each worker's backend replica reserves (0 on CPU)
    gpus_per_worker: float = 0.0
    #: samples per batch sent to a worker (default: the backend's own chunk size)
    chunk_size: int | None = None
    #: CPUs of a "local" cluster (default: one per worker)
    num_cpus: int | None = None

    def check(self) -> RayOptions:
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.gpus_per_worker < 0:
            raise ConfigError(f"--gpus-per-worker must be >= 0, got {self.gpus_per_worker}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ConfigError(f"--chunk-size must be >= 1, got {self.chunk_size}")
        if not self.address.strip():
            raise ConfigError("--ray-address is empty; expected local, auto, HOST:PORT or ray://HOST:PORT")
        if importlib.util.find_spec("ray") is None:
            raise ConfigError(RAY_EXTRA_HINT)
        return self


def executor_options(executor: str, address: str | None, workers: int | None, gpus_per_worker: float | None,
                     chunk_size: int | None) -> RayOptions | None:
    """The CLI's executor flags as options (None: run in this process); ray-only flags without
    `--executor ray` are an error rather than silently ignored."""
    if executor == "local":
        given = [flag for flag, value in (("--ray-address", address), ("--workers", workers),
                                          ("--gpus-per-worker", gpus_per_worker),
                                          ("--chunk-size", chunk_size)) if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} only apply with --executor ray")
        return None
    return RayOptions(address=address or "local", workers=2 if workers is None else workers,
                      gpus_per_worker=gpus_per_worker or 0.0, chunk_size=chunk_size).check()
