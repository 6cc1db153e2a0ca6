"""Loaders on the real data layouts: MMLU with and without header row and with letter or
index answers, the exact lm-eval prompt text, and RACE's two formats on records written here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from evalkit.errors import DataError
from evalkit.task import DataSource, get_task
from tests.conftest import SHARED_DATA
from tests.helpers import evalkit, show_json

ARTICLES = [
    {"id": "high1.txt", "article": "Tom has a red bike. He rides it to school every day.",
     "questions": ["What colour is the bike?", "Where does Tom ride?"],
     "options": [["Red", "Blue", "Green", "Black"], ["To the park", "To school", "Home", "To work"]],
     "answers": ["A", "B"]},
    {"id": "high2.txt", "article": "The shop opens at nine and closes at five.",
     "questions": ["When does the shop close?"],
     "options": [["At nine", "At noon", "At five", "At ten"]], "answers": ["C"]},
]


def write_original(root: Path, level: str = "high") -> None:
    folder = root / "race" / "test" / level
    folder.mkdir(parents=True)
    for art in ARTICLES:
        (folder / art["id"]).write_text(json.dumps(art), encoding="utf-8")


def write_hf_rows(root: Path) -> None:
    folder = root / "race" / "high"
    folder.mkdir(parents=True)
    rows = [
        {"example_id": art["id"], "article": art["article"], "answer": ans, "question": q, "options": opts}
        for art in ARTICLES for q, opts, ans in zip(art["questions"], art["options"], art["answers"], strict=True)
    ]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.parametrize("writer", [write_original, write_hf_rows])
def test_race_formats_give_the_same_samples(tmp_path: Path, writer) -> None:  # type: ignore[no-untyped-def]
    writer(tmp_path)
    samples = get_task("race_high").load(DataSource(tmp_path, allow_hub=False)).samples
    assert [s.id for s in samples] == ["high/high1.txt/0", "high/high1.txt/1", "high/high2.txt/0"]
    assert [s.target for s in samples] == [0, 1, 2]
    assert samples[1].choices == ("To the park", "To school", "Home", "To work")
    assert samples[2].metadata["article"] == ARTICLES[1]["article"]


def test_race_runs_end_to_end_and_prompt_holds_article(tmp_path: Path) -> None:
    write_original(tmp_path)
    write_original(tmp_path, "middle")
    out = tmp_path / "runs"
    result = evalkit("run", "--model", "mock", "--tasks", "race_high,race_text", "--data-dir", str(tmp_path),
                     "--output-dir", str(out), "--no-progress", "--offline")
    assert result.returncode == 0, result.stderr
    logs = {e["task"]: e for e in show_json(out)["logs"]}
    assert logs["race_high"]["n_samples"] == 3 and logs["race_text"]["n_samples"] == 6
    assert set(logs["race_text"]["results"]["subtasks"]) == {"high", "middle"}
    record = json.loads((next(out.rglob("race_text-*.jsonl"))).read_text().splitlines()[1])
    assert record["prompt"].startswith("Article: Tom has a red bike.")
    assert [r["continuation"] for r in record["requests"]] == [" Red", " Blue", " Green", " Black"]


def test_race_bad_article_file_names_file_and_field(tmp_path: Path) -> None:
    write_original(tmp_path)
    bad = tmp_path / "race" / "test" / "high" / "high1.txt"
    data = json.loads(bad.read_text())
    del data["answers"]
    bad.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"high1.txt: missing field 'answers'"):
        get_task("race_high").load(DataSource(tmp_path, allow_hub=False))


def test_race_missing_level_names_the_layouts_looked_for(tmp_path: Path) -> None:
    write_original(tmp_path)
    with pytest.raises(DataError, match=r"no RACE middle/test data"):
        get_task("race").load(DataSource(tmp_path, allow_hub=False))


def test_mmlu_headerless_letter_answers_equal_header_index_answers(tmp_path: Path) -> None:
    """Hendrycks' original files have no header and letter answers; the shared copy has both."""
    for split in ("test", "dev"):
        src = SHARED_DATA / "mmlu" / split / f"anatomy_{split}.csv"
        rows = list(csv.reader(src.open(encoding="utf-8", newline="")))[1:]
        dest = tmp_path / "mmlu" / split / src.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([*r[:5], "ABCD"[int(r[5])]] for r in rows)
    original = get_task("mmlu_anatomy").load(DataSource(tmp_path, allow_hub=False))
    shared = get_task("mmlu_anatomy").load(DataSource(SHARED_DATA, allow_hub=False))
    assert original.samples == shared.samples and len(shared.samples) == 135
    assert original.fewshot == shared.fewshot


def test_mmlu_prompt_is_lm_eval_format() -> None:
    task = get_task("mmlu_abstract_algebra")
    data = task.load(DataSource(SHARED_DATA, allow_hub=False))
    sample, shot = data.samples[0], data.fewshot["abstract_algebra"][0]
    rows = {split: list(csv.reader((SHARED_DATA / "mmlu" / split / f"abstract_algebra_{split}.csv").open(
        encoding="utf-8", newline="")))[1] for split in ("test", "dev")}

    def block(row: list[str]) -> str:
        return f"{row[0].strip()}\nA. {row[1]}\nB. {row[2]}\nC. {row[3]}\nD. {row[4]}\nAnswer:"

    expected = ("The following are multiple choice questions (with answers) about abstract algebra.\n\n"
                + block(rows["dev"]) + " " + "ABCD"[int(rows["dev"][5])] + "\n\n" + block(rows["test"]))
    assert task.render_prompt(sample, [shot]) == expected
    requests = task.build_requests(sample, [shot])
    assert [r.continuation for r in requests] == [" A", " B", " C", " D"]  # type: ignore[union-attr]
    assert sample.target == 1  # the first abstract_algebra question's answer is B (SOURCES.md)


def test_mmlu_text_prompt_is_lm_eval_continuation_format() -> None:
    task = get_task("mmlu_text")
    data = get_task("mmlu_anatomy").load(DataSource(SHARED_DATA, allow_hub=False))
    sample = data.samples[0]
    prompt = task.render_prompt(sample, [])
    assert prompt == ("The following are questions (with answers) about anatomy.\n\n"
                      f"Question: {str(sample.input).strip()}\nAnswer:")
    assert [r.continuation for r in task.build_requests(sample, [])] == [" " + c for c in sample.choices]  # type: ignore[union-attr]
