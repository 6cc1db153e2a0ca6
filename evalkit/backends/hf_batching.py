"""Continuous batching for transformers models: a preallocated KV cache of slots.

Every decode step feeds one token per slot and writes its K/V into one shared column of
preallocated buffers [slots, kv_heads, columns, head_dim], so a step copies nothing (the
stock DynamicCache concatenates, i.e. copies the whole cache, every step). Rows are right
aligned: a row's prompt K/V is written so that it ends at the current column, and a 4D mask
hides the columns before it. A finished row's slot is refilled at once with a waiting row;
when nobody waits the buffers shrink to the live slots. Positions are each row's own (RoPE is
applied before caching), so padding never changes what a row computes, only how much.

Each distinct prompt is run once (batch 1, no padding) and its K/V copied into the slot of
every sample drawn from it.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: columns added when the buffers run out (amortises the copy)
GROW_COLUMNS = 256


def _cache_kwarg(model: Any) -> str:
    """transformers 5 renamed `past_key_values` to `cache`."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def layer_kv(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))


def sliding_window(model: Any) -> int | None:
    """The window of a model that mixes sliding and full attention layers (Gemma 3), else None."""
    config = model.config.get_text_config()
    types = getattr(config, "layer_types", None) or []
    window = getattr(config, "sliding_window", None)
    return int(window) if window and "sliding_attention" in types else None


class Prefill:
    """One prompt's forward pass: its K/V per layer and the logits for the first new token."""

    def __init__(self, model: Any, tokens: list[int], device: str) -> None:
        import torch
        from transformers import DynamicCache

        ids = torch.tensor([tokens], device=device)
        # a plain (full) cache even for sliding-window layers: rows keep every column, the mask
        # applies the window
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{_cache_kwarg(model): DynamicCache()})
        self.kv = layer_kv(out.past_key_values)
        self.logits: torch.Tensor = out.logits[0, -1].float()
        self.length = len(tokens)


class SlotCache:
    """K/V buffers for `slots` rows; all rows write column `end` at each step."""

    def __init__(self, template: Prefill, slots: int, columns: int, end: int) -> None:
        import torch

        self.keys = [torch.zeros((slots, k.shape[1], columns, k.shape[3]), dtype=k.dtype, device=k.device)
                     for k, _ in template.kv]
        self.values = [torch.zeros((slots, v.shape[1], columns, v.shape[3]), dtype=v.dtype, device=v.device)
                       for _, v in template.kv]
        self.end = end  # the column the next step writes
        self.window_start = end  # first column any live row reads

    @property
    def slots(self) -> int:
        return self.keys[0].shape[0]

    @property
    def columns(self) -> int:
        return self.keys[0].shape[2]

    def put(self, slot: int, prefill: Prefill) -> int:
        """Copy a prompt's K/V into `slot`, ending at `end`; returns its first column."""
        start = self.end - prefill.length
        for (k, v), kb, vb in zip(prefill.kv, self.keys, self.values, strict=True):
            kb[slot, :, start:self.end] = k[0]
            vb[slot, :, start:self.end] = v[0]
        return start

    def select(self, slots: list[int]) -> None:
        """Keep only these slots (in this order)."""
        import torch

        index = torch.tensor(slots, device=self.keys[0].device)
        self.keys = [k.index_select(0, index) for k in self.keys]
        self.values = [v.index_select(0, index) for v in self.values]

    def make_room(self, min_end: int) -> int:
        """Before a step with no free column: drop columns no row reads, add GROW_COLUMNS.
        Returns the shift applied to column indices."""
        import torch

        live = self.end - self.window_start
        new_end = max(live, min_end)
        shift = new_end - self.end
        columns = new_end + GROW_COLUMNS
        for buffers in (self.keys, self.values):
            for i, old in enumerate(buffers):
                new = torch.zeros((old.shape[0], old.shape[1], columns, old.shape[3]), dtype=old.dtype,
                                  device=old.device)
                new[:, :, new_end - live:new_end] = old[:, :, self.window_start:self.end]
                buffers[i] = new
        self.end, self.window_start = new_end, new_end - live
        return shift

    def as_cache(self) -> Any:
        """A transformers Cache whose layers write into these buffers."""
        from transformers.cache_utils import Cache

        return Cache(layers=[_SlotLayer(self, i) for i in range(len(self.keys))])


def _slot_layer_base() -> type:
    from transformers.cache_utils import DynamicLayer

    return DynamicLayer


class _SlotLayer(_slot_layer_base()):  # type: ignore[misc]
    """One layer's view of a SlotCache, in the interface transformers' attention calls."""

    def __init__(self, owner: SlotCache, index: int) -> None:
        super().__init__()
        self.owner, self.index = owner, index
        self.is_initialized = True

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        o = self.owner
        kb, vb = o.keys[self.index], o.values[self.index]
        kb[:, :, o.end:o.end + 1] = key_states
        vb[:, :, o.end:o.end + 1] = value_states
        return kb[:, :, o.window_start:o.end + 1], vb[:, :, o.window_start:o.end + 1]

    def get_seq_length(self) -> int:
        return self.owner.end - self.owner.window_start

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0


def decode_step(model: Any, cache: SlotCache, tokens: list[int], positions: list[int], starts: list[int],
                window: int | None, device: str) -> torch.Tensor:
    """One token per slot; returns float32 logits [slots, vocab]. `starts[s]` is the first
    column slot s reads (a free slot reads only its own new column)."""
    import torch

    end, first = cache.end, cache.window_start
    cols = torch.arange(first, end + 1, device=device)
    start_t = torch.tensor(starts, device=device).unsqueeze(1)
    mask = cols.unsqueeze(0) >= start_t
    attention: Any = mask[:, None, None, :]
    if window is not None:
        # Gemma-style sliding layers: also hide columns more than window-1 steps back
        slide = mask & (cols.unsqueeze(0) > end - window)
        attention = {"full_attention": attention, "sliding_attention": slide[:, None, None, :]}
    ids = torch.tensor(tokens, device=device).unsqueeze(1)
    pos = torch.tensor(positions, device=device).unsqueeze(1)
    out = model(input_ids=ids, attention_mask=attention, position_ids=pos, use_cache=True, logits_to_keep=1,
                **{_cache_kwarg(model): cache.as_cache()})
    cache.end += 1
    logits: torch.Tensor = out.logits[:, -1].float()
    return logits
