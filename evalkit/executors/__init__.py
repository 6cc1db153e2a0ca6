"""Where the model under test runs: in this process (the default) or on a Ray cluster
(`--executor ray`, evalkit.executors.ray_pool). The driver plans, caches and writes the logs
either way; an executor only changes where the backend's batches are computed."""

from __future__ import annotations

from evalkit.backends.base import Backend
from evalkit.executors.config import RayOptions
from evalkit.models import ModelSpec, create_backend


def create_model_backend(spec: ModelSpec, ray: RayOptions | None) -> Backend:
    """The model under test's backend: here, or a pool of replicas on a Ray cluster."""
    if ray is None:
        return create_backend(spec)
    from evalkit.executors.ray_pool import RayPool

    return RayPool(spec, ray)
