"""Text generation for the hf backend: one scheduler for greedy and sampled requests.

- A str prompt is a raw completion; a tuple of Messages goes through the tokenizer's chat
  template (with the generation prompt), and is an error for a model without one.
- Continuous batching (evalkit.backends.hf_batching): up to `gen_batch_size` rows decode
  together (unset: `auto_capacity`, more rows when rows are short); a row that ends (EOS, the
  chat template's end-of-turn token, a stop sequence, max tokens) frees its slot for a waiting
  row at once.
- Each distinct prompt runs once; the k samples drawn from it start from copies of its K/V.
- Sampled rows each draw from their own stream seeded by (seed, sample id, repeat, prompt)
  (evalkit.backends.sampling), so a sample's text does not depend on batch size or on the
  other requests, up to near-ties at the last bit of fp arithmetic.
- Stop sequences are checked on each row's text as tokens arrive; the text is cut there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.backends.hf_batching import Prefill, SlotCache, decode_step, sliding_window
from evalkit.backends.sampling import Pick, RowSampling, pick_tokens, row_generator, sample_seed
from evalkit.types import GenerateRequest, Response, Usage, prompt_to_json

if TYPE_CHECKING:
    from evalkit.backends.hf import HFBackend

#: trace(request index, step, pick): every token choice, for tests that explain divergences
Trace = Callable[[int, int, Pick], None]


def prompt_tokens(backend: HFBackend, request: GenerateRequest) -> list[int]:
    if isinstance(request.prompt, str):
        return backend.encode(request.prompt)
    tokenizer = backend.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"model {backend.spec.raw!r} has no chat template; send a str prompt instead")
    text = tokenizer.apply_chat_template([m.to_dict() for m in request.prompt], add_generation_prompt=True,
                                         tokenize=False)
    return list(tokenizer.encode(text, add_special_tokens=False))


@dataclass
class _Row:
    index: int
    prompt: tuple[int, ...]
    sampling: RowSampling
    eos: frozenset[int]
    stops: tuple[str, ...]
    max_new: int
    new: list[int] = field(default_factory=list)
    slot: int = -1
    start: int = 0  # first cache column of this row

    @property
    def position(self) -> int:
        """Position of the token fed next (the last one chosen)."""
        return len(self.prompt) + len(self.new) - 1


def generate_batch(backend: HFBackend, requests: Sequence[GenerateRequest],
                   trace: Trace | None = None) -> list[Response]:
    import torch

    out: list[Response | None] = [None] * len(requests)
    rows: list[_Row] = []
    for i, req in enumerate(requests):
        try:
            rows.append(_make_row(backend, i, req))
        except ValueError as exc:
            out[i] = Response(error=str(exc))
    if rows:
        with torch.inference_mode():
            _Scheduler(backend, rows, trace).run()
    tokenizer = backend.tokenizer
    for row in rows:
        text = cut_at_stop(str(tokenizer.decode(row.new, skip_special_tokens=True)), row.stops)
        out[row.index] = Response(text=text, usage=Usage(len(row.prompt), len(row.new)))
    return [r if r is not None else Response(error="not generated") for r in out]


def _make_row(backend: HFBackend, index: int, req: GenerateRequest) -> _Row:
    tokens = prompt_tokens(backend, req)
    limit = backend.max_length
    tokens = tokens[-(limit - 1):] if len(tokens) >= limit else tokens
    params = req.params
    generator = None
    if params.temperature > 0:
        seed = sample_seed(params.seed, req.sample_id, req.repeat, str(prompt_to_json(req.prompt)))
        generator = row_generator(seed)
    eos = eos_ids(backend)
    if not isinstance(req.prompt, str):
        eos = eos | end_of_turn_ids(backend.tokenizer)
    return _Row(index, tuple(tokens), RowSampling(params.temperature, params.top_p, generator), eos,
                tuple(s for s in params.stop if s), max(1, min(params.max_tokens, limit - len(tokens))))


#: gen_batch_size unset: as many rows as keep the K/V buffers near this many tokens, within
#: AUTO_ROWS. Short sampled rows (k = 25 x 20 tokens) decode 1.44x faster at 200 rows than at 32
#: (bench/bench_generate.py); long ones keep 32 rows, so memory stays what it was
AUTO_KV_TOKENS = 16384
AUTO_ROWS = (32, 256)


def auto_capacity(rows: Sequence[_Row]) -> int:
    per_row = max(len(r.prompt) for r in rows) + max(r.max_new for r in rows)
    low, high = AUTO_ROWS
    return max(low, min(high, AUTO_KV_TOKENS // per_row))


class _Scheduler:
    """Admits rows into free slots, steps the batch, retires finished rows."""

    def __init__(self, backend: HFBackend, rows: list[_Row], trace: Trace | None) -> None:
        self.backend, self.model, self.tokenizer = backend, backend.model, backend.tokenizer
        self.trace = trace
        self.waiting = deque(rows)  # in arrival order: the k samples of a prompt stay together
        self.prefills: dict[tuple[int, ...], Prefill] = {}
        self.remaining: dict[tuple[int, ...], int] = {}
        for row in rows:
            self.remaining[row.prompt] = self.remaining.get(row.prompt, 0) + 1
        self.longest_prompt = max(len(r.prompt) for r in rows)
        self.capacity = min(backend.gen_batch_size or auto_capacity(rows), len(rows))
        self.window = sliding_window(self.model)
        self.cache: SlotCache | None = None
        self.live: list[_Row | None] = []
        self.stop_tail = {r.index: 4 * max((len(s) for s in r.stops), default=0) + 1 for r in rows}

    def run(self) -> None:
        self._admit()
        while any(r is not None for r in self.live):
            self._step()
            self._admit()
            self._shrink()

    # --- admission -----------------------------------------------------------------------------

    def _prefill(self, prompt: tuple[int, ...]) -> Prefill:
        found = self.prefills.get(prompt)
        if found is None:
            found = self.prefills[prompt] = Prefill(self.model, list(prompt), self.backend.device)
        self.remaining[prompt] -= 1
        if not self.remaining[prompt]:
            del self.prefills[prompt]  # the last sample of this prompt: its K/V can go
        return found

    def _admit(self) -> None:
        while self.waiting:
            slot = self._free_slot()
            if slot is None:
                return
            row = self.waiting.popleft()
            prefill = self._prefill(row.prompt)
            cache = self._cache_for(prefill)
            row.slot, row.start = slot, cache.put(slot, prefill)
            self.live[slot] = row
            # the prompt pass already gave the first token's logits
            [pick] = pick_tokens(prefill.logits.unsqueeze(0), [row.sampling])
            if self._accept(row, pick):
                self._retire(row)

    def _free_slot(self) -> int | None:
        for slot, row in enumerate(self.live):
            if row is None:
                return slot
        if len(self.live) < self.capacity:
            self.live.append(None)
            return len(self.live) - 1
        return None

    def _cache_for(self, prefill: Prefill) -> SlotCache:
        if self.cache is None:
            columns = self.longest_prompt + 64
            self.cache = SlotCache(prefill, self.capacity, columns, self.longest_prompt)
        return self.cache

    # --- decoding ------------------------------------------------------------------------------

    def _step(self) -> None:
        cache = self.cache
        assert cache is not None
        live = [(s, r) for s, r in enumerate(self.live) if r is not None]
        cache.window_start = min(r.start for _, r in live)
        if cache.end >= cache.columns:
            shift = cache.make_room(self.longest_prompt)
            for _, row in live:
                row.start += shift
        n = cache.slots
        tokens, positions, starts = [0] * n, [0] * n, [cache.end] * n
        for slot, row in live:
            tokens[slot], positions[slot], starts[slot] = row.new[-1], row.position, row.start
        logits = decode_step(self.model, cache, tokens, positions, starts, self.window, self.backend.device)
        picks = pick_tokens(logits[[s for s, _ in live]], [r.sampling for _, r in live])
        for (_, row), pick in zip(live, picks, strict=True):
            if self._accept(row, pick):
                self._retire(row)

    def _accept(self, row: _Row, pick: Pick) -> bool:
        """Record a chosen token; True when the row is finished."""
        if self.trace is not None:
            self.trace(row.index, len(row.new), pick)
        if pick.token in row.eos:
            return True
        row.new.append(pick.token)
        if len(row.new) >= row.max_new:
            return True
        if row.stops:
            # stops can only complete inside the newest token, so decoding a short tail suffices
            tail = str(self.tokenizer.decode(row.new[-self.stop_tail[row.index]:], skip_special_tokens=True))
            return any(s in tail for s in row.stops)
        return False

    def _retire(self, row: _Row) -> None:
        self.live[row.slot] = None

    def _shrink(self) -> None:
        """With nobody waiting, drop dead slots once they are half the batch."""
        if self.waiting or self.cache is None:
            return
        keep = [s for s, r in enumerate(self.live) if r is not None]
        if not keep or len(keep) > len(self.live) // 2:
            return
        self.cache.select(keep)
        self.live = [self.live[s] for s in keep]
        for slot, row in enumerate(self.live):
            assert row is not None
            row.slot = slot
        self.capacity = len(self.live)


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = len(text)
    for stop in stops:
        if stop:
            pos = text.find(stop)
            if pos != -1:
                cut = min(cut, pos)
    return text[:cut]


def eos_ids(backend: HFBackend) -> frozenset[int]:
    ids = backend.model.generation_config.eos_token_id
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if backend.tokenizer.eos_token_id is not None:
        found.add(backend.tokenizer.eos_token_id)
    return frozenset(found)


def end_of_turn_ids(tokenizer: Any) -> frozenset[int]:
    """The special token the chat template closes an assistant turn with (<|im_end|>,
    <end_of_turn>, <|eot_id|>...): an instruct model's answer ends there even when the
    model's EOS is another token."""
    cached = getattr(tokenizer, "_evalkit_end_of_turn", None)
    if cached is not None:
        return frozenset(cached)
    found: set[int] = set()
    marker = "ZqXJ7"
    try:
        text = str(tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}], tokenize=False))
    except Exception:  # a template that refuses this conversation: no extra stop token
        text = ""
    if marker in text:
        after = tokenizer.encode(text.split(marker, 1)[1], add_special_tokens=False)
        special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        if after and after[0] in special:
            found.add(int(after[0]))
    tokenizer._evalkit_end_of_turn = tuple(found)
    return frozenset(found)
