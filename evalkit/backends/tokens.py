"""Tokenisation helpers the local backends share (per-sample sampling seeds are in
`sampling.sample_seed`, also torch-free at import). Imports no torch: the `gguf` extra has none,
so llama.cpp's log-likelihoods must not pull it in through the transformers backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence

Tokens = tuple[int, ...]


def lm_eval_encode_pair(encode: Callable[[str], list[int]], context: str, continuation: str,
                        prefix_token_id: int) -> tuple[Tokens, Tokens]:
    """lm-eval's `_encode_pair` (and its empty-context rule): trailing whitespace of the
    context moves to the continuation; the continuation is what encoding the whole adds."""
    if context == "":
        cont = encode(continuation)
        if cont and cont[0] == prefix_token_id:
            return tuple(cont[:1]), tuple(cont[1:])
        return (prefix_token_id,), tuple(cont)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode(context + continuation)
    ctx = encode(context)
    return tuple(ctx), tuple(whole[len(ctx):])


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
