"""AlpacaEval (Li et al., 2023): 805 instructions from 5 sources, single-turn.

The evaluation set (`alpaca_eval.json`) lives on Hugging Face (`tatsu-lab/alpaca_eval`);
its instructions and `dataset` tags are exactly those of any AlpacaEval
`results/<model>/model_outputs.json`, so a local copy of one of those files is read from
`$EVALKIT_DATA_DIR/alpaca_eval/results/*/model_outputs.json[.gz]` (only the `instruction`
and `dataset` fields), else the hub. Win rates need a judge (a later step); until then the
metrics are `answered` and output length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.backends.replay_formats import read_json_array
from evalkit.data import load_hub, local_dir
from evalkit.errors import DataError
from evalkit.families.open_ended import OpenEndedTask
from evalkit.task import Built, DataSource, TaskData, register_task
from evalkit.types import GenerateRequest, GenerationParams, Message, Sample, stable_hash

HUB_ID = "tatsu-lab/alpaca_eval"
#: the reference models' outputs, preferred in this order when several are present
PREFERRED = ("gpt4_1106_preview", "text_davinci_003", "gpt4")
MAX_TOKENS = 2048


class AlpacaEval(OpenEndedTask):
    name = "alpaca_eval"
    version = "1"
    description = "AlpacaEval: 805 instructions (answered rate and output length until judged)"
    prompt_format = "alpaca_eval chat: the instruction as the only user message; no system prompt"

    def load(self, source: DataSource) -> TaskData:
        path = local_outputs_file(source)
        if path is not None:
            return TaskData(tuple(rows_to_samples(read_local_rows(path))), {}, str(path))
        rows = load_hub("alpaca_eval", HUB_ID, source, "alpaca_eval", "eval")
        return TaskData(tuple(rows_to_samples(hub_rows(rows))), {}, f"hf:{HUB_ID}")

    def build(self, sample: Sample, shots: Sequence[Sample]) -> Built:
        params = GenerationParams(max_tokens=MAX_TOKENS, temperature=0.0)
        return Built(str(sample.input), (GenerateRequest((Message("user", str(sample.input)),), params),))


def local_outputs_file(source: DataSource) -> Path | None:
    folder = local_dir(source, "alpaca_eval")
    if folder is None:
        return None
    found = sorted(folder.glob("results/*/model_outputs.json*"))
    if not found:
        raise DataError(f"{folder}: no results/*/model_outputs.json[.gz] to read the 805 instructions from")
    rank = {name: i for i, name in enumerate(PREFERRED)}
    return min(found, key=lambda p: (rank.get(p.parent.name, len(rank)), str(p)))


def read_local_rows(path: Path) -> list[tuple[str, Mapping[str, Any]]]:
    """(where, row) for every row; only `instruction` and `dataset` are used."""
    return [(f"{path}:{line}", row) for line, row in read_json_array(path)]


def hub_rows(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(f"hf:{HUB_ID} row {n}", row) for n, row in enumerate(rows)]


def rows_to_samples(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Sample]:
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    for n, (where, row) in enumerate(rows):
        instruction = row.get("instruction")
        if not isinstance(instruction, str) or not instruction:
            raise DataError(f"{where}: missing field 'instruction' (or it is empty)")
        sample_id = stable_hash(instruction, 12)  # order-independent: the same from any copy
        if sample_id in seen:
            raise DataError(f"{where}: duplicate instruction (first at {seen[sample_id]})")
        seen[sample_id] = where
        dataset = str(row.get("dataset") or "")
        samples.append(Sample(id=sample_id, input=instruction, subtask=dataset,
                              metadata={"row": n, "dataset": dataset}))
    return samples


register_task("alpaca_eval", AlpacaEval)
