"""The replay readers and backend on small hand-made files: formats, lookups, bad input."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.backends.replay import ReplayBackend, create
from evalkit.backends.replay_formats import read_stored_outputs
from evalkit.errors import ConfigError, DataError
from evalkit.models import create_backend, parse_model_spec
from evalkit.types import GENERATE, GenerateRequest, Message, Prompt, Sample


def write_jsonl(path: Path, rows: list[dict[str, Any]], gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def ask(backend: ReplayBackend, sample_id: str, prompt: Prompt = "q", repeat: int = 0) -> tuple[str | None, str | None]:
    (response,) = asyncio.run(backend.generate([GenerateRequest(prompt, repeat=repeat, sample_id=sample_id)]))
    return response.text, response.error


def chat(*user_turns: str) -> tuple[Message, ...]:
    """A chat prompt at turn len(user_turns): earlier turns answered by the assistant."""
    messages: list[Message] = []
    for i, text in enumerate(user_turns):
        if i:
            messages.append(Message("assistant", f"answer {i}"))
        messages.append(Message("user", text))
    return tuple(messages)


# --- formats, detected from the content --------------------------------------------------

def test_humaneval_lines_of_one_task_id_are_its_repeats(tmp_path: Path) -> None:
    rows = [{"task_id": "HumanEval/0", "completion": f"c{i}"} for i in range(3)]
    rows.insert(1, {"task_id": "HumanEval/1", "completion": "other"})
    backend = create(parse_model_spec(f"replay:{write_jsonl(tmp_path / 'samples.jsonl', rows)}"))
    assert backend.stored.format == "humaneval"
    assert backend.capabilities == frozenset({GENERATE})
    assert [ask(backend, "HumanEval/0", repeat=i)[0] for i in range(3)] == ["c0", "c1", "c2"]
    text, error = ask(backend, "HumanEval/0", repeat=3)
    assert text is None and error is not None and "no stored output for HumanEval/0 repeat 3" in error
    assert backend.describe()["model_name"] == "samples"  # no name in the file: the file name


def test_mt_bench_turns_follow_the_number_of_user_messages(tmp_path: Path) -> None:
    rows = [{"question_id": 81, "model_id": "m1", "choices": [{"index": 0, "turns": ["t1", "t2"]}]}]
    backend = create(parse_model_spec(f"replay:{write_jsonl(tmp_path / 'a.jsonl.gz', rows, gz=True)}"))
    assert backend.stored.format == "mt_bench"
    assert ask(backend, "81", chat("q1")) == ("t1", None)
    assert ask(backend, "81", chat("q1", "q2")) == ("t2", None)
    _, error = ask(backend, "81", chat("q1", "q2", "q3"))
    assert error is not None and "turn 3" in error
    assert backend.describe()["model_name"] == "m1"


def test_fastchat_api_error_marker_is_an_error_not_an_answer(tmp_path: Path) -> None:
    rows = [{"question_id": 1, "model_id": "m", "choices": [{"turns": ["fine", "$ERROR$"]}]}]
    backend = create(parse_model_spec(f"replay:{write_jsonl(tmp_path / 'a.jsonl', rows)}"))
    assert ask(backend, "1", chat("q1")) == ("fine", None)
    text, error = ask(backend, "1", chat("q1", "q2"))
    assert text is None and error is not None and "API error marker" in error


def test_alpaca_eval_matches_by_instruction_and_names_lines(tmp_path: Path) -> None:
    rows = [{"instruction": "Say hi", "output": "hi", "generator": "g"},
            {"instruction": "Say bye", "output": "bye", "generator": "g"}]
    path = tmp_path / "model_outputs.json"
    path.write_text(json.dumps(rows, indent=2))
    backend = create(parse_model_spec(f"replay:{path}"))
    assert backend.stored.format == "alpaca_eval"
    assert ask(backend, "any-id", chat("Say bye")) == ("bye", None)
    assert ask(backend, "other", "Say hi") == ("hi", None)
    _, error = ask(backend, "x1", chat("Say what"))
    assert error == "no stored output for x1"
    assert backend.stored.lines == {"Say hi": 2, "Say bye": 7}
    assert backend.describe()["model_name"] == "g"


def test_alpaca_eval_without_generator_is_named_after_its_folder(tmp_path: Path) -> None:
    (tmp_path / "my_model").mkdir()
    path = tmp_path / "my_model" / "model_outputs.json"
    path.write_text(json.dumps([{"instruction": "i", "output": "o"}]))
    assert create(parse_model_spec(f"replay:{path}")).describe()["model_name"] == "my_model"


def test_evalkit_format_with_repeats_turns_and_task_filter(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"task": "a", "id": "1", "output": "a1", "model": "m"},
        {"task": "a", "id": "1", "repeat": 1, "output": "a1-bis", "model": "m"},
        {"task": "b", "id": "1", "output": ["b1 turn1", "b1 turn2"], "model": "m"},
    ]
    path = write_jsonl(tmp_path / "out.jsonl", rows)
    with pytest.raises(DataError, match=r"out.jsonl:3: id '1' is stored for task 'b' and for task 'a'"):
        create(parse_model_spec(f"replay:{path}"))
    only_a = create(parse_model_spec(f"replay:{path}", {"task": "a"}))
    assert [ask(only_a, "1", repeat=i)[0] for i in (0, 1)] == ["a1", "a1-bis"]
    only_b = create(parse_model_spec(f"replay:{path}", {"task": "b"}))
    assert ask(only_b, "1", chat("x", "y")) == ("b1 turn2", None)


def test_format_and_name_options_override_detection(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "x.jsonl", [{"question_id": 1, "model_id": "file-name", "choices": [{"turns": ["a"]}]}])
    backend = create(parse_model_spec(f"replay:{path}", {"format": "mt_bench", "name": "mine"}))
    assert backend.describe()["model_name"] == "mine"
    assert backend.describe()["model_name_from"] == "--model-args name"
    with pytest.raises(DataError, match=r"x.jsonl:1: missing field 'task_id'"):
        create(parse_model_spec(f"replay:{path}", {"format": "humaneval"}))
    with pytest.raises(ConfigError, match="unknown format"):
        create(parse_model_spec(f"replay:{path}", {"format": "csv"}))
    with pytest.raises(ConfigError, match="unknown option"):
        create(parse_model_spec(f"replay:{path}", {"temperature": "0"}))


def test_fingerprint_follows_the_content_not_the_path(tmp_path: Path) -> None:
    rows = [{"task_id": "T/0", "completion": "x"}]
    one = create(parse_model_spec(f"replay:{write_jsonl(tmp_path / 'a.jsonl', rows)}"))
    two = create(parse_model_spec(f"replay:{write_jsonl(tmp_path / 'b.jsonl', rows)}"))
    rows[0]["completion"] = "y"
    three = create(parse_model_spec(f"replay:{write_jsonl(tmp_path / 'c.jsonl', rows)}"))
    assert one.fingerprint() == two.fingerprint() != three.fingerprint()


def test_match_samples_counts_unknown_outputs_and_missing_samples(tmp_path: Path) -> None:
    rows = [{"task_id": t, "completion": "x"} for t in ("T/0", "T/1", "T/9")]
    backend = create(parse_model_spec(f"replay:{write_jsonl(tmp_path / 's.jsonl', rows)}"))
    samples = [Sample(id=f"T/{i}", input="p") for i in range(3)]
    report = backend.match_samples(samples, samples)
    assert report["unmatched_outputs"] == 1
    assert report["unmatched_examples"] == ["'T/9' (line 3)"]
    assert report["samples_without_output"] == 1  # T/2


# --- bad files: one-line errors naming the file and line ---------------------------------

@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"task_id": "T/0", "completion": "x"}, {"task_id": "T/1"}], r"s.jsonl:2: missing field 'completion'"),
        ([{"question_id": 1, "model_id": "m", "choices": [{"turns": ["a"]}]}, {"question_id": 2, "choices": []}],
         r"s.jsonl:2: missing field 'model_id'"),
        ([{"question_id": 1, "model_id": "m", "choices": [{"index": 0}]}], r"s.jsonl:1: missing field 'choices\[0\].turns'"),
        ([{"id": "a", "output": "x"}, {"id": "b"}], r"s.jsonl:2: missing field 'output'"),
        ([{"question_id": 1, "model_id": "m", "choices": [{"turns": ["a"]}]}] * 2,
         r"s.jsonl:2: duplicate question_id 1 \(first at line 1\)"),
        ([{"id": "a", "output": "x"}, {"id": "b", "output": "y"}, {"id": "a", "output": "z"}],
         r"s.jsonl:3: duplicate id 'a' repeat 0 \(first at line 1\)"),
        ([{"id": "a", "output": "x"}, {"id": "a", "repeat": 2, "output": "y"}], r"s.jsonl:1: 'a' has repeats \[0, 2\] but no repeat 1"),
        ([{"question_id": 1, "model_id": "m", "choices": [{"turns": ["a"]}]},
          {"question_id": 2, "model_id": "n", "choices": [{"turns": ["b"]}]}], r"several models in one file \('m', 'n'\)"),
        ([{"prompt": "p", "answer": "a"}], r"s.jsonl:1: cannot tell the format"),
        ([{"task_id": "T/0", "completion": 3}], r"s.jsonl:1: field 'completion' must be a string"),
    ],
)
def test_bad_jsonl_files(tmp_path: Path, rows: list[dict[str, Any]], message: str) -> None:
    path = write_jsonl(tmp_path / "s.jsonl", rows)
    with pytest.raises(DataError, match=message) as info:
        create(parse_model_spec(f"replay:{path}"))
    assert "\n" not in str(info.value)


def test_malformed_json_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"task_id": "T/0", "completion": "x"}\n\n{"task_id": "T/1", "completion": \n')
    with pytest.raises(DataError, match=r"s.jsonl:3: malformed JSON"):
        read_stored_outputs(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[\n  {"instruction": "a", "output": "x"},\n  {"instruction": "b"}\n]', r"o.json:3: missing field 'output'"),
        ('[\n  {"instruction": "a", "output": "x"},\n\n  {"instruction": "a", "output": "y"}\n]',
         r"o.json:4: duplicate instruction 'a' \(first at line 2\)"),
        ('[\n  {"instruction": "a", "output": "x"},\n  {"instruction": "b", "output": }\n]', r"o.json:3: malformed JSON"),
        ('[\n  {"instruction": "a", "output": "x"}\n  {"instruction": "b", "output": "y"}\n]',
         r"o.json:3: malformed JSON \(expected ',' or '\]'"),
        ('[\n  {"instruction": "a", "output": "x"},\n', r"o.json:3: malformed JSON"),
        ("[]", r"o.json: no stored outputs"),
    ],
)
def test_bad_alpaca_eval_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "o.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        create(parse_model_spec(f"replay:{path}"))


def test_truncated_gzip(tmp_path: Path) -> None:
    rows = [{"task_id": f"T/{i}", "completion": "x" * 200 + str(i)} for i in range(50)]
    full = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    path = tmp_path / "samples.jsonl.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(DataError, match=r"samples.jsonl.gz: corrupt or truncated gzip"):
        create(parse_model_spec(f"replay:{path}"))


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        create_backend(parse_model_spec(f"replay:{tmp_path / 'nope.jsonl'}"))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="empty.jsonl: file is empty"):
        create_backend(parse_model_spec(f"replay:{tmp_path / 'empty.jsonl'}"))
