"""Log-likelihood scoring for transformers causal LMs: each shared context computed once.

Requests are tokenized exactly as lm-eval's HFLM does (so numbers agree with it), then:

1. Requests with the same context (the choices of one question) become one *row*: the
   context once, then every continuation (minus its last token) packed after it. A 4-D
   attention mask lets each continuation see the context and itself only, and position ids
   restart after the context, so each continuation is scored exactly as if alone.
2. Rows whose contexts share a long token prefix (few-shot examples of one subject) form a
   *family*: the prefix runs once, and its KV cache serves every row of the family.
3. Short rows of one family are packed end to end into *bins* of about PACK_WIDTH tokens
   (first-fit decreasing), each row a block that sees only itself, so batches carry almost
   no padding. Bins are formed before batching: batch size does not change them.
4. Bins are sorted by length and batched, a batch never padding a bin by more than a quarter
   (one long row must not pad short bins to its length); padding is masked, so results do not
   depend on batch size or padding (within float rounding). Logits are computed only at the
   positions that score a token, not over the whole sequence.

Models with sliding-window attention (e.g. Gemma 3) get the plain path instead: one row per
request with an ordinary padding mask, which transformers turns into its own masks.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from evalkit.backends.tokens import Tokens, common_prefix
from evalkit.backends.tokens import lm_eval_encode_pair as lm_eval_encode_pair  # re-exported

#: shortest shared prefix worth a separate KV-cache pass (an MMLU subject header is ~15)
MIN_SHARED_PREFIX = 8
#: target length of a packed bin: long enough that short rows need no padding, short enough
#: that attention over the whole bin (a mask hides other rows, it does not skip them) stays cheap
PACK_WIDTH = 256


@dataclass
class Row:
    """One sequence fed to the model after an optional shared prefix of `offset` tokens."""

    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    #: 0 = context; j >= 1 = the j-th packed continuation (sees the context and itself)
    segments: list[int] = field(default_factory=list)
    #: (index in this row of the predicting position, target token, item index)
    targets: list[tuple[int, int, int]] = field(default_factory=list)
    #: which packed row a token belongs to; tokens see only their own block
    blocks: list[int] = field(default_factory=list)

    def append(self, other: Row) -> None:
        """Pack `other` after this row's tokens as a new block."""
        start, block = len(self.tokens), (self.blocks[-1] + 1 if self.blocks else 0)
        self.tokens.extend(other.tokens)
        self.positions.extend(other.positions)
        self.segments.extend(other.segments)
        self.blocks.extend([block] * len(other.tokens))
        self.targets.extend((start + i, token, item) for i, token, item in other.targets)


def context_row(ctx: Tokens, offset: int, items: Sequence[tuple[int, Tokens]]) -> Row:
    """The context (after `offset` shared tokens) then each continuation's tokens but the last."""
    rest = ctx[offset:]
    row = Row(list(rest), list(range(offset, offset + len(rest))), [0] * len(rest))
    last_ctx = len(rest) - 1
    for seg, (item, cont) in enumerate(items, start=1):
        start = len(row.tokens)
        for t, token in enumerate(cont):
            row.targets.append((last_ctx if t == 0 else start + t - 1, token, item))
        fed = cont[:-1]
        row.tokens.extend(fed)
        row.positions.extend(range(len(ctx), len(ctx) + len(fed)))
        row.segments.extend([seg] * len(fed))
    row.blocks = [0] * len(row.tokens)
    return row


def pack_bins(rows: Sequence[Row], width: int) -> list[Row]:
    """First-fit decreasing: rows up to `width` tokens share bins; longer rows stand alone.

    Depends only on the rows (never on batch size), so a row's neighbours are the same
    whatever the batching."""
    bins: list[Row] = []
    for row in sorted(rows, key=lambda r: -len(r.tokens)):
        target = next((b for b in bins if len(b.tokens) + len(row.tokens) <= width), None)
        if target is None:
            target = Row()
            bins.append(target)
        target.append(row)
    return bins


def plain_row(ctx: Tokens, cont: Tokens, item: int, max_length: int) -> Row:
    """lm-eval's input for one request: (context + continuation)[-(max_length+1):][:-1]."""
    fed = list((ctx + cont)[-(max_length + 1):][:-1])
    start = len(fed) - len(cont)
    targets = [(start + t, token, item) for t, token in enumerate(cont)]
    return Row(fed, list(range(len(fed))), [0] * len(fed), targets, [0] * len(fed))


def batches(rows: Sequence[Row], batch_size: int, token_budget: int) -> Iterator[list[Row]]:
    """Longest first; a batch ends at `batch_size` rows, at `token_budget` padded tokens, or
    before a row shorter than 3/4 of the batch's width (padding stays under a quarter)."""
    ordered = sorted(rows, key=lambda r: -len(r.tokens))
    start = 0
    while start < len(ordered):
        width, n = len(ordered[start].tokens), 1
        while (start + n < len(ordered) and n < batch_size and (n + 1) * width <= token_budget
               and 4 * len(ordered[start + n].tokens) >= 3 * width):
            n += 1
        yield ordered[start : start + n]
        start += n


def shared_prefix_families(contexts: Sequence[Tokens]) -> list[tuple[int, list[Tokens]]]:
    """Split contexts into (shared prefix length, members); length 0 means no sharing.

    Sorted contexts put those with a common prefix next to each other; a run continues
    while neighbours share at least MIN_SHARED_PREFIX tokens and at least 3/4 of the run's
    prefix (so one subject's block is not cut down to a header that all subjects share)."""
    ordered = sorted(set(contexts))
    families: list[tuple[int, list[Tokens]]] = []
    run: list[Tokens] = []
    shared = 0
    for ctx in ordered:
        if run:
            common = common_prefix(run[-1], ctx)
            if common >= MIN_SHARED_PREFIX and (len(run) == 1 or 4 * common >= 3 * shared):
                shared = common if len(run) == 1 else min(shared, common)
                run.append(ctx)
                continue
            families.append(_close_family(run, shared))
        run, shared = [ctx], 0
    if run:
        families.append(_close_family(run, shared))
    return families


def _close_family(run: list[Tokens], shared: int) -> tuple[int, list[Tokens]]:
    if len(run) < 2:
        return 0, run
    # every row keeps at least one context token of its own (it predicts the first answer token)
    shared = min(shared, min(len(c) for c in run) - 1)
    return (shared if shared >= MIN_SHARED_PREFIX else 0), run


class LoglikelihoodScorer:
    """Scores (context tokens, continuation tokens) pairs with a causal LM."""

    def __init__(self, model: Any, *, batch_size: int, max_length: int, pack: bool,
                 token_budget: int = 4096, pack_width: int = PACK_WIDTH) -> None:
        self.model = model
        self.decoder = model.get_decoder()
        self.head = model.get_output_embeddings()
        self.softcap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
        self.batch_size = max(1, batch_size)
        self.max_length = max_length
        self.pack = pack
        self.token_budget = token_budget
        self.pack_width = pack_width
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        #: the last shared prefix and its KV cache, reused by the next call (the next chunk)
        self._kept_prefix: tuple[Tokens, list[tuple[torch.Tensor, torch.Tensor]]] | None = None

    @torch.inference_mode()
    def score(self, pairs: Sequence[tuple[Tokens, Tokens]]) -> list[tuple[float, bool]]:
        logprob = [0.0] * len(pairs)
        greedy = [True] * len(pairs)
        for prefix, rows in self._plan(pairs):
            kv = self._prefix_kv(prefix) if prefix else None
            for batch in batches(pack_bins(rows, self.pack_width) if self.pack else rows,
                                 self.batch_size, self.token_budget):
                for item, lp, is_greedy in self._run_batch(batch, prefix, kv):
                    logprob[item] += lp
                    greedy[item] = greedy[item] and is_greedy
        return list(zip(logprob, greedy, strict=True))

    def _plan(self, pairs: Sequence[tuple[Tokens, Tokens]]) -> list[tuple[Tokens, list[Row]]]:
        """(shared prefix, rows) work units; the prefix is () for rows that stand alone."""
        plain: list[Row] = []
        by_context: dict[Tokens, list[tuple[int, Tokens]]] = defaultdict(list)
        for item, (ctx, cont) in enumerate(pairs):
            if not cont:
                continue  # an empty continuation has log-likelihood 0
            if self.pack and len(ctx) + len(cont) - 1 <= self.max_length:
                by_context[ctx].append((item, cont))
            else:
                plain.append(plain_row(ctx, cont, item, self.max_length))
        units: list[tuple[Tokens, list[Row]]] = [((), plain)] if plain else []
        kept = self._kept_prefix[0] if self._kept_prefix else None
        alone: list[Row] = []
        for shared, members in shared_prefix_families(list(by_context)):
            if not shared and kept and len(members) == 1 and _extends(members[0], kept):
                shared = len(kept)  # the previous chunk's prefix, still in memory
            prefix = members[0][:shared]
            rows = [context_row(ctx, shared, by_context[ctx]) for ctx in members]
            if shared:
                units.append((prefix, rows))
            else:
                alone.extend(rows)
        if alone:
            units.append(((), alone))
        return units

    def _prefix_kv(self, prefix: Tokens) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self._kept_prefix and self._kept_prefix[0] == prefix:
            return self._kept_prefix[1]
        ids = torch.tensor([prefix], device=self.device)
        positions = torch.arange(len(prefix), device=self.device)[None]
        out = self.decoder(input_ids=ids, position_ids=positions, use_cache=True)
        kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        self._kept_prefix = (prefix, kv)
        return kv

    def _run_batch(self, rows: Sequence[Row], prefix: Tokens,
                   kv: list[tuple[torch.Tensor, torch.Tensor]] | None) -> list[tuple[int, float, bool]]:
        hidden = self._hidden_states(rows, prefix, kv)
        where = [(b, pos) for b, row in enumerate(rows) for pos, _, _ in row.targets]
        index = torch.tensor(where, device=self.device)
        logits = self.head(hidden[index[:, 0], index[:, 1]]).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        logprobs = torch.log_softmax(logits, dim=-1)
        wanted = torch.tensor([t for row in rows for _, t, _ in row.targets], device=self.device)
        token_lp = logprobs.gather(1, wanted[:, None]).squeeze(1).tolist()
        is_top = (logprobs.argmax(dim=-1) == wanted).tolist()
        items = [item for row in rows for _, _, item in row.targets]
        return list(zip(items, token_lp, is_top, strict=True))

    def _hidden_states(self, rows: Sequence[Row], prefix: Tokens,
                       kv: list[tuple[torch.Tensor, torch.Tensor]] | None) -> torch.Tensor:
        width = max(len(r.tokens) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        positions = torch.zeros(len(rows), width, dtype=torch.long)
        segments = torch.full((len(rows), width), -1, dtype=torch.long)
        blocks = torch.full((len(rows), width), -1, dtype=torch.long)
        for b, row in enumerate(rows):
            n = len(row.tokens)
            ids[b, :n] = torch.tensor(row.tokens)
            positions[b, :n] = torch.tensor(row.positions)
            segments[b, :n] = torch.tensor(row.segments)
            blocks[b, :n] = torch.tensor(row.blocks)
        ids, positions = ids.to(self.device), positions.to(self.device)
        if not self.pack:  # plain rows only: let transformers build its own (sliding-window) masks
            mask2d = (segments >= 0).long().to(self.device)
            hidden: torch.Tensor = self.decoder(input_ids=ids, attention_mask=mask2d, use_cache=False).last_hidden_state
            return hidden
        mask = self._packed_mask(segments.to(self.device), blocks.to(self.device), len(prefix))
        past = shared_prefix_cache(kv) if kv is not None else None
        out = self.decoder(input_ids=ids, attention_mask=mask, position_ids=positions,
                           past_key_values=past, use_cache=past is not None)
        last: torch.Tensor = out.last_hidden_state
        return last

    def _packed_mask(self, segments: torch.Tensor, blocks: torch.Tensor, prefix_len: int) -> torch.Tensor:
        """Additive 4-D mask: causal within a block (one packed row), a continuation sees its
        block's context and itself, padding sees padding; every token sees the shared prefix."""
        batch, width = segments.shape
        causal = torch.ones(width, width, dtype=torch.bool, device=self.device).tril()
        seg_q = segments[:, :, None]
        seg_k = segments[:, None, :]
        same_block = blocks[:, :, None] == blocks[:, None, :]
        allowed = causal[None] & same_block & ((seg_k == 0) | (seg_k == seg_q))
        if prefix_len:
            allowed = torch.cat(
                [torch.ones(batch, width, prefix_len, dtype=torch.bool, device=self.device), allowed], dim=-1)
        mask = torch.zeros(allowed.shape, dtype=self.dtype, device=self.device)
        mask.masked_fill_(~allowed, torch.finfo(self.dtype).min)
        return mask[:, None]


def shared_prefix_cache(kv: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    """A transformers cache holding the shared prefix's keys/values once (batch 1).

    Each layer returns them, expanded to the batch, before the batch's own keys/values, and
    keeps nothing: a forward holds one layer's concatenation at a time. (A DynamicCache of
    expanded tensors keeps batch x prefix keys/values of every layer until the forward ends:
    over 1 GB for a 16-row batch after a 1,400-token 5-shot prefix.)"""
    from transformers.cache_utils import Cache

    return Cache(layers=[_shared_prefix_layer_class()(k, v) for k, v in kv])


@functools.cache
def _shared_prefix_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class SharedPrefixLayer(DynamicLayer):  # type: ignore[no-untyped-call]  # untyped transformers base
        def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.keys, self.values = keys, values  # what get_seq_length() reads
            self.prefix = (keys, values)
            self.dtype, self.device = keys.dtype, keys.device
            self.is_initialized = True

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor,
                   *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
            batch = key_states.shape[0]
            keys, values = self.prefix
            return (torch.cat([keys.expand(batch, -1, -1, -1), key_states], dim=-2),
                    torch.cat([values.expand(batch, -1, -1, -1), value_states], dim=-2))

    return SharedPrefixLayer


def _extends(ctx: Tokens, prefix: Tokens) -> bool:
    return len(ctx) > len(prefix) and ctx[: len(prefix)] == prefix
