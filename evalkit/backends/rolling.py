"""Rolling token windows for a text's log-likelihood (perplexity); torch-free.

`rolling_windows` is lm-eval's `get_rolling_token_windows` + `make_disjoint_window` with
context_len = max_length - stride + 1: the first window predicts the first max_length tokens
from the prefix token; each later window predicts the next `stride` tokens (fewer at the end)
after the max_length + 1 - len(predicted) tokens before them, so no window feeds the model more
than max_length tokens and every token is predicted exactly once. stride = max_length gives
lm-eval's disjoint windows (context of one token).
"""

from __future__ import annotations

from collections.abc import Sequence

from evalkit.backends.tokens import Tokens
from evalkit.errors import ConfigError


def check_window(max_length: int, stride: int) -> None:
    if max_length < 1 or not 1 <= stride <= max_length:
        raise ConfigError(f"rolling windows need max_length >= 1 and 1 <= stride <= max_length "
                          f"(got max_length={max_length}, stride={stride})")


def rolling_windows(tokens: Sequence[int], prefix_token: int, max_length: int, stride: int) -> list[tuple[Tokens, Tokens]]:
    """(context, continuation) token pairs; the continuations concatenate to `tokens`."""
    check_window(max_length, stride)
    if not tokens:
        return []
    first = min(max_length, len(tokens))
    windows: list[tuple[Tokens, Tokens]] = [((prefix_token,), tuple(tokens[:first]))]
    predicted = first
    while predicted < len(tokens):
        end = min(len(tokens), predicted + stride)
        n_context = max_length + 1 - (end - predicted)
        windows.append((tuple(tokens[predicted - n_context : predicted]), tuple(tokens[predicted:end])))
        predicted = end
    return windows
