"""Fixtures for the API backend tests: the stub proxy, the real llama.cpp server and a proxy before it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api_support.fault_proxy import FaultProxy, ProxyConfig
from tests.api_support.servers import LlamaServer


@pytest.fixture(scope="session")
def stub_proxy_session() -> Iterator[FaultProxy]:
    with FaultProxy(upstream="stub") as proxy:
        yield proxy


@pytest.fixture
def stub_proxy(stub_proxy_session: FaultProxy) -> FaultProxy:
    """The stub-upstream proxy with no faults and zeroed counters."""
    stub_proxy_session.configure(**vars(ProxyConfig()))  # every setting back to its default
    stub_proxy_session.reset_stats()
    return stub_proxy_session


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    with LlamaServer() as server:
        yield server


@pytest.fixture(scope="session")
def llama_proxy_session(llama_server: LlamaServer) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=llama_server.url.removesuffix("/v1")) as proxy:
        yield proxy


@pytest.fixture
def llama_proxy(llama_proxy_session: FaultProxy) -> FaultProxy:
    """The real server behind a fault-free proxy with zeroed counters."""
    llama_proxy_session.configure(**vars(ProxyConfig()))
    llama_proxy_session.reset_stats()
    return llama_proxy_session
