"""Token choice for batched decoding that does not depend on the batch.

Each sampled row owns a `torch.Generator` seeded from (seed, sample id, repeat, prompt) and
draws exactly one uniform per step, so its random stream is the same whatever else is in the
batch. The draw is turned into a token by inverse CDF over the (top-p filtered) distribution,
summed in float64 per row: a row's token can only change with the batch when the logits'
last-bit differences move a CDF boundary across the draw, i.e. at a near-tie. `Pick.margin`
says how near (probability mass for sampled rows, top-1 minus top-2 logit for greedy ones),
so tests can explain every divergence.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def sample_seed(seed: int, sample_id: str, repeat: int, prompt_key: str) -> int:
    """A 63-bit seed for one sample's stream: same request, same text, whatever the batch."""
    material = f"{seed}\x00{sample_id}\x00{repeat}\x00{prompt_key}".encode()
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big") >> 1


def row_generator(seed: int) -> torch.Generator:
    import torch

    return torch.Generator(device="cpu").manual_seed(seed)


@dataclass(frozen=True, slots=True)
class Pick:
    token: int
    #: distance to the nearest choice that would flip the token (see module docstring)
    margin: float


@dataclass(frozen=True, slots=True)
class RowSampling:
    temperature: float
    top_p: float
    generator: torch.Generator | None  # None: greedy


def pick_tokens(logits: torch.Tensor, rows: Sequence[RowSampling]) -> list[Pick]:
    """One token per row of `logits` [rows, vocab]; greedy rows by argmax, others sampled."""
    picks: list[Pick | None] = [None] * len(rows)
    groups: dict[tuple[float, float], list[int]] = defaultdict(list)
    greedy: list[int] = []
    for i, row in enumerate(rows):
        if row.generator is None or row.temperature <= 0:
            greedy.append(i)
        else:
            groups[(row.temperature, row.top_p)].append(i)
    if greedy:
        for i, pick in zip(greedy, _greedy(logits[greedy]), strict=True):
            picks[i] = pick
    for (temperature, top_p), idxs in groups.items():
        gens = [rows[i].generator for i in idxs]
        for i, pick in zip(idxs, _sampled(logits[idxs], temperature, top_p, gens), strict=True):
            picks[i] = pick
    return [p for p in picks if p is not None]


def _greedy(logits: torch.Tensor) -> list[Pick]:
    # argmax, as transformers' greedy search: ties go to the lowest id
    tokens = logits.argmax(dim=-1).tolist()
    top2 = logits.float().topk(min(2, logits.shape[-1]), dim=-1).values
    gaps = (top2[:, 0] - top2[:, -1]).tolist()
    return [Pick(int(t), float(g)) for t, g in zip(tokens, gaps, strict=True)]


def _sampled(logits: torch.Tensor, temperature: float, top_p: float,
             generators: Sequence[torch.Generator | None]) -> list[Pick]:
    import torch

    scaled = logits.float() / temperature
    # the normaliser in float32 (stable logsumexp), probabilities then summed in float64: an
    # exp over the whole vocabulary in float64 costs ~15x the float32 one (222 vs 15 ms for
    # 200 rows x 49k tokens), and the logits themselves only carry float32 precision
    lse = torch.logsumexp(scaled, dim=-1, keepdim=True)
    draws = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in generators])
    if top_p >= 1.0:
        probs = torch.exp(scaled - lse).double()
        return _draw(probs, None, draws)
    picks: list[Pick | None] = [None] * len(generators)
    for idxs, probs, order in _nucleus(scaled, lse, top_p):
        for i, pick in zip(idxs, _draw(probs, order, draws[idxs]), strict=True):
            picks[i] = pick
    return [p for p in picks if p is not None]


def _draw(probs: torch.Tensor, order: torch.Tensor | None, draws: torch.Tensor) -> list[Pick]:
    """Inverse CDF of each row's draw over its (kept) probabilities, in the order given."""
    import torch

    cdf = probs.cumsum(dim=-1)
    total = cdf[:, -1]
    target = (draws.to(cdf.device) * total).unsqueeze(1)
    pos = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[-1] - 1)
    upper = cdf.gather(1, pos)
    lower = torch.where(pos > 0, cdf.gather(1, (pos - 1).clamp(min=0)), torch.zeros_like(upper))
    margin = (torch.minimum(target - lower, upper - target) / total.unsqueeze(1)).squeeze(1)
    tokens = order.gather(1, pos) if order is not None else pos
    return [Pick(int(t), float(m)) for t, m in zip(tokens.squeeze(1).tolist(), margin.tolist(), strict=True)]


#: the nucleus is looked for among this many top tokens first, then among the second number
#: for the rows it did not fit, then in a full sort of the rows still short (a full sort of a
#: 50k-256k vocabulary costs ~0.5 s per step for 200 rows, far more than the model step;
#: SmolLM2 at T=1, top_p=0.9 needs more than 512 tokens in ~20% of its rows, more than 8192 in none)
NUCLEUS_CANDIDATES = (512, 8192)


def _nucleus(scaled: torch.Tensor, lse: torch.Tensor,
             top_p: float) -> list[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Groups of rows (their indices, kept probabilities in descending order, their token ids):
    a token is kept while the mass before it is below top_p (the top one always). Exact: each
    row's candidates grow until they hold top_p of its mass, up to the whole vocabulary."""
    import torch

    vocab = scaled.shape[-1]
    groups: list[tuple[list[int], torch.Tensor, torch.Tensor]] = []
    pending = list(range(scaled.shape[0]))
    for k in (*(c for c in NUCLEUS_CANDIDATES if c < vocab), vocab):
        rows = scaled[pending] if len(pending) < scaled.shape[0] else scaled
        if k < vocab:
            values, order = rows.topk(k, dim=-1, sorted=True)
        else:
            values, order = rows.sort(dim=-1, descending=True, stable=True)
        probs = torch.exp(values - lse[pending]).double()
        fits = probs.sum(dim=-1) >= top_p if k < vocab else torch.ones_like(probs[:, 0], dtype=torch.bool)
        kept = probs * ((probs.cumsum(dim=-1) - probs) < top_p)
        done = fits.nonzero().squeeze(1)
        if len(done):
            groups.append(([pending[i] for i in done.tolist()], kept[done], order[done]))
        pending = [pending[i] for i in (~fits).nonzero().squeeze(1).tolist()]
        if not pending:
            break
    return groups
