"""Rolling log-likelihood windows (perplexity, issue 21): the windows, `hf:smollm2` against a
direct transformers computation of the same windows, and the `perplexity` task end to end."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from evalkit.backends.rolling import rolling_windows
from evalkit.cli import main
from evalkit.errors import ConfigError
from evalkit.models import create_backend, parse_model_spec
from evalkit.types import RollingLoglikelihoodRequest

TEXTS = [
    "The quick brown fox jumps over the lazy dog. Photosynthesis converts light energy into chemical "
    "energy stored in glucose, and the cat sleeps in the sun while rain falls on the hills.",
    "Mars is the red planet.",
]


def test_windows_by_hand() -> None:
    tokens = list(range(10, 20))  # 10 tokens, prefix 0
    # disjoint (stride = max_length = 4): lm-eval's windows with context_len 1
    assert rolling_windows(tokens, 0, 4, 4) == [
        ((0,), (10, 11, 12, 13)), ((13,), (14, 15, 16, 17)), ((15, 16, 17), (18, 19))]
    # stride 2: each window predicts 2 tokens after the 3 before them (max_length 4 fed)
    assert rolling_windows(tokens, 0, 4, 2) == [
        ((0,), (10, 11, 12, 13)), ((11, 12, 13), (14, 15)), ((13, 14, 15), (16, 17)), ((15, 16, 17), (18, 19))]
    for stride in (1, 2, 3, 4):
        windows = rolling_windows(tokens, 0, 4, stride)
        assert [t for _, cont in windows for t in cont] == tokens
        assert all(len(ctx) + len(cont) - 1 <= 4 for ctx, cont in windows)
    with pytest.raises(ConfigError, match="stride"):
        rolling_windows(tokens, 0, 4, 5)


def direct_loglikelihood(model: Any, tokens: list[int], prefix: int, max_length: int, stride: int) -> float:
    """One plain forward pass per window, written independently of evalkit's windows/scorer:
    the token at index k is predicted from (prefix + tokens)[lo : k + 1], lo = max(0, end - max_length)."""
    seq = [prefix, *tokens]
    total, start = 0.0, 0
    while start < len(tokens):
        end = min(len(tokens), max_length if start == 0 else start + stride)
        lo = max(0, end - max_length)
        ids = torch.tensor([seq[lo:end]])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
        total += sum(float(logprobs[k - lo, seq[k + 1]]) for k in range(start, end))
        start = end
    return total


@pytest.fixture(scope="module")
def smollm2() -> Any:
    backend = create_backend(parse_model_spec("hf:smollm2", {"dtype": "float32", "batch_size": "3"}))
    yield backend
    asyncio.run(backend.aclose())


@pytest.mark.parametrize(("max_length", "stride"), [(16, 16), (16, 5), (64, 64)])
def test_hf_rolling_equals_direct_transformers(smollm2: Any, max_length: int, stride: int) -> None:
    requests = [RollingLoglikelihoodRequest(t, max_length, stride) for t in TEXTS]
    answers = asyncio.run(smollm2.loglikelihood_rolling(requests))
    for text, answer in zip(TEXTS, answers, strict=True):
        tokens = smollm2.tokenizer.encode(text, add_special_tokens=False)
        expected = direct_loglikelihood(smollm2.model, tokens, smollm2.prefix_token_id, max_length, stride)
        assert answer.num_tokens == len(tokens)
        assert answer.logprob == pytest.approx(expected, rel=1e-4)


def test_perplexity_task_end_to_end(tmp_path: Path, smollm2: Any) -> None:
    corpus = tmp_path / "docs.txt"
    corpus.write_text("\n\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "runs"
    assert main(["run", "--model", "hf:smollm2", "--model-args", "dtype=float32", "--tasks", "perplexity",
                 "-T", f"path={corpus}", "-T", "max_length=16", "-T", "stride=5", "--output-dir", str(out),
                 "--no-progress"]) == 0
    (log,) = sorted(out.rglob("perplexity-*.jsonl"))
    summary = [json.loads(line) for line in log.read_text().splitlines()][-1]
    metrics = summary["results"]["overall"]
    ll = sum(direct_loglikelihood(smollm2.model, smollm2.tokenizer.encode(t, add_special_tokens=False),
                                  smollm2.prefix_token_id, 16, 5) for t in TEXTS)
    tokens = sum(len(smollm2.tokenizer.encode(t, add_special_tokens=False)) for t in TEXTS)
    words = sum(len(t.split()) for t in TEXTS)
    size = sum(len(t.encode("utf-8")) for t in TEXTS)
    assert metrics["token_perplexity"]["value"] == pytest.approx(math.exp(-ll / tokens), rel=1e-4)
    assert metrics["word_perplexity"]["value"] == pytest.approx(math.exp(-ll / words), rel=1e-4)
    assert metrics["byte_perplexity"]["value"] == pytest.approx(math.exp(-ll / size), rel=1e-4)
    assert metrics["bits_per_byte"]["value"] == pytest.approx(-ll / size / math.log(2), rel=1e-4)
    assert metrics["word_perplexity"]["n"] == 2


def test_stride_larger_than_window_fails_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--model", "hf:smollm2", "--tasks", "perplexity", "-T", "max_length=8", "-T", "stride=9",
                 "--output-dir", str(tmp_path)])
    assert code == 2
    assert "stride=9 is larger than -T max_length=8" in capsys.readouterr().err
