"""HumanEval's chat extraction on what SmolLM2-135M-Instruct actually replies (20 real replies,
greedy, chat form, kept in tests/fixtures/smollm2_humaneval_chat.jsonl with the sandbox's
verdict at the time): fenced code with trailing prose. Every reply must become a program that
parses and defines the entry point, so a failure is the model's wrong answer, never ours."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from evalkit.task import DataSource, get_task
from evalkit.tasks.humaneval import chat_program, extract_code, problem_of

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "smollm2_humaneval_chat.jsonl"
REPLIES = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def problems() -> dict[str, dict[str, str]]:
    data = get_task("humaneval").load(DataSource(None, allow_hub=False))
    return {s.id: problem_of(s) for s in data.samples}


@pytest.mark.parametrize("row", REPLIES, ids=[r["task_id"] for r in REPLIES])
def test_real_reply_becomes_a_program_that_parses(row: dict[str, str], problems: dict[str, dict[str, str]]) -> None:
    problem = problems[row["task_id"]]
    code = extract_code(row["reply"], problem["entry_point"])
    assert "```" not in code and "This function" not in code  # no fence, no trailing prose
    try:
        ast.parse(code)
    except SyntaxError:  # the model's own code does not parse (3 of 20: unbalanced brackets,
        # a reply cut at max_tokens in a repetition loop): that failure is the model's
        assert row["result"].startswith(("failed: SyntaxError", "failed: IndentationError")), row["result"]
        return
    tree = ast.parse(chat_program(problem, row["reply"]))  # a SyntaxError here would be ours
    defined = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert problem["entry_point"] in defined
    assert "SyntaxError" not in row["result"] and "IndentationError" not in row["result"]


def test_a_correct_answer_in_the_same_shape_passes(problems: dict[str, dict[str, str]]) -> None:
    """The real reply's shape (fence, then prose) around a correct body is scored correct."""
    import asyncio

    task = get_task("humaneval_chat")
    sample = next(s for s in task.load(DataSource(None, allow_hub=False)).samples if s.id == "HumanEval/0")
    reply = ("```python\nfrom typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float)"
             " -> bool:\n    return any(abs(a - b) < threshold for i, a in enumerate(numbers)"
             " for b in numbers[i + 1:])\n```\n\nThis function compares every pair once.")
    from evalkit.types import Response

    score = asyncio.run(task.ascore(sample, [Response(text=reply)]))
    assert score.value == 1.0, score.extras
