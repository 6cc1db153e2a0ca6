"""One local Ray cluster for the tests in this folder: started on 127.0.0.1 only (no traffic to
any other address), 2 CPUs, auth off (a private test cluster), stopped after the last test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="package")
def ray_cluster() -> Iterator[str]:
    """The cluster's address (HOST:PORT) for drivers in other processes; this process is connected."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when Ray is imported: loopback node address
    os.environ["RAY_AUTH_MODE"] = "disabled"
    import ray  # the `ray` extra; .ci/setup.sh installs it
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:"), f"the test cluster must listen on loopback only, got {address}"
    try:
        yield address
    finally:
        ray.shutdown()
