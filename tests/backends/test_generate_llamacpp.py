"""gguf generation: each sample's seed comes from (seed, sample id, repeat, prompt), so its
text does not depend on what else was in the batch or in which order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from evalkit.models import create_backend, parse_model_spec
from evalkit.types import GenerateRequest, GenerationParams


@pytest.fixture(scope="module")
def gguf() -> Any:
    b = create_backend(parse_model_spec("gguf:smollm2", {"n_ctx": "512"}))
    yield b
    asyncio.run(b.aclose())


def test_sampled_texts_do_not_depend_on_company_or_order(gguf: Any) -> None:
    params = GenerationParams(max_tokens=12, temperature=1.0, top_p=0.9, seed=2)
    mine = [GenerateRequest("The capital of France is", params, repeat=r, sample_id="a") for r in range(4)]
    other = [GenerateRequest("Once upon a time", params, repeat=r, sample_id="b") for r in range(3)]
    alone = [r.text for r in asyncio.run(gguf.generate(mine))]
    mixed = asyncio.run(gguf.generate(other[:1] + mine[::-1] + other[1:]))
    assert [r.text for r in mixed[1:5]][::-1] == alone
    assert len(set(alone)) > 1  # every repeat has its own stream
