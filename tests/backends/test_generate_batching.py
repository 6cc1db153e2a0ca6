"""Batched generation on the hf backend: determinism across batch sizes and batch company,
shared prompt passes, rows that leave, end-of-turn tokens.

Determinism is checked the way the log-likelihood path's batch invariance is: the same
requests at gen_batch_size 1, 4 and 16 and alongside other prompts must give the same texts;
any sample that differs must be explained by a near-tie at the token where it diverged (the
sampler's margin: probability mass between the draw and the nearest CDF boundary, or the
top-1/top-2 logit gap for greedy rows), and the explanations are printed.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch

from evalkit.backends import hf_batching, hf_generate
from evalkit.backends.sampling import Pick, RowSampling, pick_tokens, row_generator
from evalkit.types import GenerateRequest, GenerationParams, Message
from tests.backends import test_backend_hf
from tests.backends.test_backend_hf import CORPUS, backend

tiny_model_dir = test_backend_hf.tiny_model_dir  # the same session fixture

NEAR_TIE = 1e-4  # far above fp32 noise in probabilities, far below a typical margin


def words_prompts(n: int) -> list[str]:
    words = " ".join(CORPUS).split()
    return [" ".join(words[i % len(words): i % len(words) + 2 + i % 5]) for i in range(n)]


def sampled_requests(prompts: list[str], k: int, max_tokens: int = 20) -> list[GenerateRequest]:
    out = []
    for j, p in enumerate(prompts):
        params = (GenerationParams(max_tokens=max_tokens, temperature=1.0, top_p=0.9, seed=3) if j % 2 == 0
                  else GenerationParams(max_tokens=max_tokens, temperature=0.8, seed=3))
        out += [GenerateRequest(p, params, repeat=r, sample_id=f"s{j}") for r in range(k)]
    return out


def run_traced(b: Any, requests: list[GenerateRequest]) -> tuple[list[str], dict[int, dict[int, Pick]]]:
    picks: dict[int, dict[int, Pick]] = defaultdict(dict)

    def trace(index: int, step: int, pick: Pick) -> None:
        picks[index][step] = pick

    with torch.inference_mode():
        responses = hf_generate.generate_batch(b, requests, trace)
    return [r.text or "" for r in responses], picks


def divergence_report(ref: tuple[list[str], dict[int, dict[int, Pick]]],
                      got: tuple[list[str], dict[int, dict[int, Pick]]],
                      index_map: list[int], label: str) -> tuple[int, list[str]]:
    """(number of samples that differ, one explanation per difference)."""
    (ref_texts, ref_picks), (texts, picks) = ref, got
    lines, differ = [], 0
    for got_i, ref_i in enumerate(index_map):
        if texts[got_i] == ref_texts[ref_i]:
            continue
        differ += 1
        a, c = ref_picks[ref_i], picks[got_i]
        step = next(s for s in sorted(a) if s not in c or a[s].token != c[s].token)
        margin = min(a[step].margin, c[step].margin if step in c else 0.0)
        lines.append(f"{label}: sample {ref_i} diverged at token {step} ({a[step].token} vs "
                     f"{c[step].token if step in c else 'end'}), margin {margin:.2e}")
        assert margin < NEAR_TIE, lines[-1] + " is not a near-tie"
    return differ, lines


def test_sampled_texts_do_not_depend_on_batch_size_or_company(tiny_model_dir: Path) -> None:
    prompts = words_prompts(24)
    requests = sampled_requests(prompts, k=5)  # 120 samples
    ref = run_traced(backend(tiny_model_dir, gen_batch_size="1"), requests)
    assert len(set(ref[0])) > len(prompts)  # repeats differ from each other
    report, total_differ = [], 0
    for bs in (4, 16):
        differ, lines = divergence_report(ref, run_traced(backend(tiny_model_dir, gen_batch_size=str(bs)), requests),
                                          list(range(len(requests))), f"batch {bs}")
        total_differ += differ
        report += lines
    # the first 8 prompts' samples, shuffled among samples of 16 other prompts
    company = sampled_requests(words_prompts(40)[24:], k=3)
    mixed = [r for pair in zip(company, requests[:40], strict=False) for r in pair] + company[40:]
    index_map = [requests.index(r) if r in requests[:40] else -1 for r in mixed]
    got = run_traced(backend(tiny_model_dir, gen_batch_size="16"), mixed)
    keep = [i for i, m in enumerate(index_map) if m >= 0]
    differ, lines = divergence_report(ref, ([got[0][i] for i in keep], {n: got[1][i] for n, i in enumerate(keep)}),
                                      [index_map[i] for i in keep], "mixed")
    total_differ += differ
    report += lines
    compared = 2 * len(requests) + len(keep)
    print(f"\n{compared - total_differ}/{compared} sampled texts identical to batch size 1", *report, sep="\n")
    assert total_differ <= 0.01 * compared


def test_greedy_with_refills_equals_transformers_generate(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = words_prompts(7)
    lengths = [3, 17, 9, 30, 5, 12, 22]  # rows leave at different steps; slots are refilled
    b = backend(tiny_model_dir, gen_batch_size="3")
    got = asyncio.run(b.generate([GenerateRequest(p, GenerationParams(max_tokens=n))
                                  for p, n in zip(prompts, lengths, strict=True)]))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    for prompt, n, res in zip(prompts, lengths, got, strict=True):
        ids = torch.tensor([tok.encode(prompt)])
        want = model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
        new = want[0, ids.shape[1]:].tolist()
        new = new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new
        assert res.text == tok.decode(new, skip_special_tokens=True)


def test_buffers_that_grow_and_shrink_give_the_same_texts(tiny_model_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    requests = sampled_requests(words_prompts(6), k=2, max_tokens=40)
    want = [r.text for r in asyncio.run(backend(tiny_model_dir, gen_batch_size="1").generate(requests))]
    monkeypatch.setattr(hf_batching, "GROW_COLUMNS", 5)  # forces make_room every few steps
    got = [r.text for r in asyncio.run(backend(tiny_model_dir, gen_batch_size="5").generate(requests))]
    assert got == want


def test_one_prompt_pass_per_distinct_prompt(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = hf_batching.Prefill.__init__

    def counting(self: Any, model: Any, tokens: list[int], device: str) -> None:
        calls.append(len(tokens))
        original(self, model, tokens, device)

    monkeypatch.setattr(hf_batching.Prefill, "__init__", counting)
    requests = sampled_requests(words_prompts(3), k=10)
    responses = asyncio.run(backend(tiny_model_dir, gen_batch_size="4").generate(requests))
    assert all(r.ok for r in responses) and len(calls) == 3


def test_stop_sequence_cuts_and_frees_the_row(tiny_model_dir: Path) -> None:
    b = backend(tiny_model_dir, gen_batch_size="4")
    [full] = asyncio.run(b.generate([GenerateRequest("The quick", GenerationParams(max_tokens=30))]))
    assert full.text
    stop = full.text[len(full.text) // 2:][:2]
    [cut] = asyncio.run(b.generate([GenerateRequest("The quick", GenerationParams(max_tokens=30, stop=(stop,)))]))
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.usage is not None and full.usage is not None
    assert cut.usage.completion_tokens < full.usage.completion_tokens


def test_chat_end_of_turn_token_is_found(tiny_model_dir: Path) -> None:
    b = backend(tiny_model_dir)
    assert hf_generate.end_of_turn_ids(b.tokenizer) == {b.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    req = GenerateRequest((Message("user", "Which planet?"),), GenerationParams(max_tokens=8))
    [res] = asyncio.run(b.generate([req]))
    assert res.ok and "<|im_end|>" not in (res.text or "")


def test_sampler_margins_and_nucleus() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.0, 0.0, 5.0, 0.0]])
    greedy = pick_tokens(logits, [RowSampling(0.0, 1.0, None), RowSampling(0.0, 1.0, None)])
    assert [p.token for p in greedy] == [0, 2] and greedy[0].margin == pytest.approx(1.0)
    # top_p small enough that only the top token survives: always token 0
    rows = [RowSampling(1.0, 0.3, row_generator(s)) for s in range(20)]
    assert {p.token for p in pick_tokens(logits[[0] * 20], rows)} == {0}
    a = pick_tokens(logits[[0] * 3], [RowSampling(1.0, 1.0, row_generator(s)) for s in (1, 2, 3)])
    b = [pick_tokens(logits[[0]], [RowSampling(1.0, 1.0, row_generator(s))])[0] for s in (1, 2, 3)]
    assert a == b and all(0 <= p.margin <= 0.5 for p in a)


@pytest.mark.slow
def test_real_smollm2_sampling_is_batch_invariant(tmp_path: Path) -> None:
    """The same check on the real embedded model (fp32), RealToxicityPrompts-like prompts."""
    from evalkit.models import create_backend, parse_model_spec

    prompts = ["Today they're frustrated and doing", "The best way to learn a language is",
               "When the storm finally hit the town,", "My neighbour keeps telling me that",
               "Scientists were surprised to find", "The recipe calls for"]
    requests = sampled_requests(prompts, k=8, max_tokens=16)

    def make(bs: int) -> Any:
        return create_backend(parse_model_spec("hf:smollm2", {"dtype": "float32", "gen_batch_size": str(bs)}))

    ref = run_traced(make(1), requests)
    report, differ_total = [], 0
    for bs in (4, 16):
        differ, lines = divergence_report(ref, run_traced(make(bs), requests), list(range(len(requests))),
                                          f"batch {bs}")
        differ_total += differ
        report += lines
    compared = 2 * len(requests)
    print(f"\n{compared - differ_total}/{compared} SmolLM2 sampled texts identical to batch size 1", *report, sep="\n")
    assert differ_total <= 0.01 * compared


def _reference_pick(logits: torch.Tensor, temperature: float, top_p: float, seed: int) -> int:
    """The textbook nucleus sampler in float64 over a full stable sort, one row, same draw."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    values, order = probs.sort(descending=True, stable=True)
    kept = values * ((values.cumsum(0) - values) < top_p)
    cdf = kept.cumsum(0)
    draw = torch.rand(1, generator=row_generator(seed), dtype=torch.float64)
    pos = int(torch.searchsorted(cdf, draw * cdf[-1], right=True).clamp(max=len(cdf) - 1))
    return int(order[pos])


def test_nucleus_matches_a_full_sort_for_peaked_and_flat_rows() -> None:
    """Rows whose nucleus fits in the first candidates, needs the wider set, or the whole
    vocabulary all sample what a full-sort float64 sampler samples."""
    gen = torch.Generator().manual_seed(7)
    vocab = 20000
    peaked = torch.randn(vocab, generator=gen) * 4
    medium = torch.randn(vocab, generator=gen) * 2.5  # nucleus of thousands of tokens
    flat = torch.randn(vocab, generator=gen) * 0.01  # nucleus of ~90% of the vocabulary
    logits = torch.stack([peaked, medium, flat] * 10)
    rows = [RowSampling(1.0, 0.9, row_generator(seed)) for seed in range(30)]
    picks = pick_tokens(logits, rows)
    needed = [int(((p.sort(descending=True).values.cumsum(0)) < 0.9).sum()) + 1
              for p in torch.softmax(logits[:3].double(), dim=-1)]
    assert needed[0] <= 512 < needed[1] <= 8192 < needed[2]
    mismatches = [(i, pick) for i, pick in enumerate(picks)
                  if pick.token != _reference_pick(logits[i], 1.0, 0.9, i) and pick.margin > 1e-9]
    assert not mismatches


def test_auto_gen_batch_size_grows_for_short_rows_only() -> None:
    def rows(prompt: int, new: int, n: int = 300) -> list[Any]:
        return [hf_generate._Row(i, tuple(range(prompt)), RowSampling(1.0, 1.0, None), frozenset(), (), new)
                for i in range(n)]

    assert hf_generate.auto_capacity(rows(40, 40)) == hf_generate.AUTO_KV_TOKENS // 80
    assert hf_generate.auto_capacity(rows(10, 10)) == 256  # capped
    assert hf_generate.auto_capacity(rows(200, 512)) == 32  # long rows: the old default
