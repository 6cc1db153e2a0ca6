"""`replay:<path>`: answer generate requests from outputs generated elsewhere.

The file (see evalkit.backends.replay_formats) is read and checked when the backend is created, so a
bad file fails before any work. A request is answered from its `sample_id` (AlpacaEval files:
the instruction, i.e. the prompt's first user message), its turn (the number of user messages
in a chat prompt, minus one) and its `repeat` (the i-th stored output for that id). A sample
with no stored output gets `Response(error="no stored output for <id>")`: recorded, never
scored.

Which stored outputs match no sample is decided by comparing the file with the task's sample
list (`match_samples`, called when the run log's header is written), not by counting what was
asked: on a resumed run or a cache hit the backend is never asked for finished samples, so
"never asked" would wrongly count them as unknown. The count goes into the header
(`backend_info`), and `aclose` logs one warning line with the outputs no task matched.

Options (`--model-args`): format=evalkit|humaneval|alpaca_eval|mt_bench (default: detected),
name=MODEL (default: from the file), task=NAME (evalkit files holding several tasks).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.backends.base import BaseBackend
from evalkit.backends.replay_formats import StoredOutputs, read_stored_outputs
from evalkit.backends.spec import BackendInfo, Option, fixed
from evalkit.errors import ConfigError, DataError
from evalkit.models import ModelSpec
from evalkit.types import GENERATE, GenerateRequest, Prompt, Response, Sample

log = logging.getLogger("evalkit")
OPTIONS = frozenset({"format", "name", "task"})
#: what FastChat's gen_api_answer.py stores when the API call failed
FASTCHAT_API_ERROR = "$ERROR$"
#: how many unmatched keys are named in the header and the warning
EXAMPLES = 5


class ReplayBackend(BaseBackend):
    capabilities = frozenset({GENERATE})
    chunk_size = 512
    max_concurrent_chunks = 4

    def __init__(self, path: Path, options: dict[str, str]) -> None:
        unknown = set(options) - OPTIONS
        if unknown:
            raise ConfigError(
                f"--model replay:{path}: unknown option(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(OPTIONS))})"
            )
        self.stored: StoredOutputs = read_stored_outputs(path, options.get("format"), options.get("task"))
        self.model_name, self.name_source = _model_name(self.stored, options.get("name"))
        self.task_filter = options.get("task")
        #: keys that some task's samples would use; None until a task has been matched
        self._matched: set[str] | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "replay", "sha256": self.stored.sha256, "format": self.stored.format,
                "task": self.task_filter}

    def describe(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_name_from": self.name_source,
            "replay_file": str(self.stored.path),
            "replay_format": self.stored.format,
            "stored_keys": len(self.stored.outputs),
            "stored_outputs": self.stored.n_samples,
        }

    def match_samples(self, task_samples: Sequence[Sample], selected: Sequence[Sample]) -> dict[str, Any]:
        """Compare the file with a task: outputs for no sample of the task (counted and
        reported), and selected samples with no output (they will be errors)."""
        wanted = {self._sample_key(s) for s in task_samples}
        unmatched = [k for k in self.stored.outputs if k not in wanted]
        self._matched = (self._matched or set()) | (set(self.stored.outputs) & wanted)
        without = [s.id for s in selected if self._sample_key(s) not in self.stored.outputs]
        return {
            "unmatched_outputs": len(unmatched),
            "unmatched_examples": [self._describe_key(k) for k in unmatched[:EXAMPLES]],
            "samples_without_output": len(without),
        }

    async def generate(self, requests: Sequence[GenerateRequest]) -> list[Response]:
        return [self._answer(r) for r in requests]

    async def aclose(self) -> None:
        if self._matched is None:
            return
        unmatched = [k for k in self.stored.outputs if k not in self._matched]
        if unmatched:
            examples = ", ".join(self._describe_key(k) for k in unmatched[:EXAMPLES])
            log.warning("%s: %d of %d stored outputs matched no sample of the tasks run (%s%s)",
                        self.stored.path, len(unmatched), len(self.stored.outputs), examples,
                        ", ..." if len(unmatched) > EXAMPLES else "")

    def _answer(self, request: GenerateRequest) -> Response:
        label = request.sample_id or "(a request without sample id)"
        key = _first_user_text(request.prompt) if self.stored.keyed_by_instruction else request.sample_id
        repeats = self.stored.outputs.get(key)
        if repeats is None:
            return Response(error=f"no stored output for {label}")
        if request.repeat >= len(repeats):
            return Response(error=f"no stored output for {label} repeat {request.repeat} "
                                  f"({self.stored.path} has {len(repeats)} for it)")
        turns = repeats[request.repeat]
        turn = _turn_index(request.prompt)
        if turn >= len(turns):
            return Response(error=f"no stored output for {label} turn {turn + 1} "
                                  f"({self.stored.path} has {len(turns)} turn(s) for it)")
        if self.stored.format == "mt_bench" and turns[turn] == FASTCHAT_API_ERROR:
            return Response(error=f"stored output for {label} turn {turn + 1} is FastChat's API error "
                                  f"marker {FASTCHAT_API_ERROR}, not an answer")
        return Response(text=turns[turn])

    def _sample_key(self, sample: Sample) -> str:
        return _first_user_text(sample.input) if self.stored.keyed_by_instruction else sample.id

    def _describe_key(self, key: str) -> str:
        line = self.stored.lines.get(key)
        shown = key if len(key) <= 40 else key[:39] + "…"
        return f"{shown!r} (line {line})"


def _first_user_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return next((m.content for m in prompt if m.role == "user"), "")


def _turn_index(prompt: Prompt) -> int:
    """Turn 0 for a plain prompt or a first user message; one more per later user message."""
    if isinstance(prompt, str):
        return 0
    return max(0, sum(1 for m in prompt if m.role == "user") - 1)


def _model_name(stored: StoredOutputs, override: str | None) -> tuple[str, str]:
    if override:
        return override, "--model-args name"
    if len(stored.model_names) > 1:
        shown = ", ".join(repr(n) for n in stored.model_names[:EXAMPLES])
        raise DataError(
            f"{stored.path}: outputs of several models in one file ({shown}); "
            "split the file or pass --model-args name=MODEL"
        )
    if stored.model_names:
        return stored.model_names[0], "file"
    stem = stored.path.name.split(".")[0]
    return stem, "file name"


def create(spec: ModelSpec) -> ReplayBackend:
    path = Path(spec.target).expanduser()
    if not path.is_file():
        raise DataError(f"--model replay:{spec.target}: no such file")
    return ReplayBackend(path, dict(spec.options))


INFO = BackendInfo(
    "replay", "stored outputs generated elsewhere (human-eval, AlpacaEval, MT-Bench, evalkit JSONL)",
    "evalkit.backends.replay:create", "replay:FILE", fixed(GENERATE),
    chat=lambda spec: (False, "replayed outputs: completion format"),
    options=(
        Option("format", str, "auto", "evalkit, humaneval, alpaca_eval or mt_bench (default: detected)"),
        Option("name", str, "", "model name for the log (default: from the file)"),
        Option("task", str, "", "replay one task of an evalkit file that holds several"),
    ),
)
