"""Text generation for the hf backend, through transformers' own `generate`.

- A str prompt is a raw completion; a tuple of Messages goes through the tokenizer's chat
  template (with the generation prompt), and is an error for a model without one.
- Greedy requests are batched (sorted by length, left-padded); sampled requests run one at
  a time with a seed derived from (seed, repeat, prompt), so a sample does not depend on
  what else was in the batch.
- Stop sequences end a row as soon as its decoded text contains one; the text is cut there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evalkit.types import GenerateRequest, GenerationParams, Response, Usage, prompt_to_json

if TYPE_CHECKING:
    from evalkit.backends.hf import HFBackend


def prompt_tokens(backend: HFBackend, request: GenerateRequest) -> list[int]:
    if isinstance(request.prompt, str):
        return backend.encode(request.prompt)
    tokenizer = backend.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"model {backend.spec.raw!r} has no chat template; send a str prompt instead")
    text = tokenizer.apply_chat_template([m.to_dict() for m in request.prompt], add_generation_prompt=True,
                                         tokenize=False)
    return list(tokenizer.encode(text, add_special_tokens=False))


def generate_batch(backend: HFBackend, requests: Sequence[GenerateRequest]) -> list[Response]:
    out: list[Response | None] = [None] * len(requests)
    encoded: dict[int, list[int]] = {}
    for i, req in enumerate(requests):
        try:
            encoded[i] = prompt_tokens(backend, req)
        except ValueError as exc:
            out[i] = Response(error=str(exc))
    greedy: dict[tuple[int, tuple[str, ...]], list[int]] = defaultdict(list)
    for i in encoded:
        params = requests[i].params
        if params.temperature <= 0:
            greedy[(params.max_tokens, params.stop)].append(i)
        else:
            out[i] = _sample_one(backend, encoded[i], requests[i])
    for (_, _), idxs in greedy.items():
        idxs.sort(key=lambda i: len(encoded[i]))
        for start in range(0, len(idxs), backend.batch_size):
            part = idxs[start : start + backend.batch_size]
            texts = _run(backend, [encoded[i] for i in part], requests[part[0]].params, sample=False)
            for i, (text, n_new) in zip(part, texts, strict=True):
                out[i] = Response(text=text, usage=Usage(len(encoded[i]), n_new))
    return [r if r is not None else Response(error="not generated") for r in out]


def _sample_one(backend: HFBackend, tokens: list[int], request: GenerateRequest) -> Response:
    import torch

    from evalkit.backends.hf import derived_seed

    prompt_key = str(prompt_to_json(request.prompt))
    torch.manual_seed(derived_seed(request.params.seed, request.repeat, prompt_key))
    [(text, n_new)] = _run(backend, [tokens], request.params, sample=True)
    return Response(text=text, usage=Usage(len(tokens), n_new))


def _run(backend: HFBackend, batch: list[list[int]], params: GenerationParams,
         *, sample: bool) -> list[tuple[str, int]]:
    import torch

    tokenizer: Any = backend.tokenizer
    model: Any = backend.model
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(t) for t in batch)
    ids = torch.full((len(batch), width), pad if pad is not None else 0, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    for row, toks in enumerate(batch):  # left padding: every row ends where generation starts
        ids[row, width - len(toks):] = torch.tensor(toks)
        mask[row, width - len(toks):] = 1
    max_new = max(1, min(params.max_tokens, backend.max_length - width))
    kwargs: dict[str, Any] = {"max_new_tokens": max_new, "pad_token_id": pad}
    if sample:
        kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if params.stop:
        kwargs["stopping_criteria"] = [StopOnText(tokenizer, params.stop, width)]
    with torch.inference_mode():
        generated = model.generate(input_ids=ids.to(backend.device), attention_mask=mask.to(backend.device), **kwargs)
    results = []
    eos = _eos_ids(model, tokenizer)
    for row in generated[:, width:].tolist():
        new = _until_eos(row, eos)
        while new and pad is not None and new[-1] == pad:  # rows that stopped early are padded
            new.pop()
        text = str(tokenizer.decode(new, skip_special_tokens=True))
        results.append((cut_at_stop(text, params.stop), len(new)))
    return results


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = len(text)
    for stop in stops:
        if stop:
            pos = text.find(stop)
            if pos != -1:
                cut = min(cut, pos)
    return text[:cut]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(tokenizer.eos_token_id)
    return found


def _until_eos(row: list[int], eos: set[int]) -> list[int]:
    for i, token in enumerate(row):
        if token in eos:
            return row[:i]
    return row


class StopOnText:
    """A stopping criterion: per row, done once the new text contains a stop sequence."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.prompt_width = prompt_width

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:], skip_special_tokens=True)
        done = [any(s in t for s in self.stops) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
