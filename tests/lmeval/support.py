"""lm-eval YAML tasks over local MMLU records, written the way an offline user would:
`dataset_path: json` with `dataset_kwargs.data_files` pointing at JSONL files made here from
/work/shared/data/mmlu (read in place through evalkit's own loader)."""

from __future__ import annotations

import json
from pathlib import Path

SUBJECTS = ("anatomy", "astronomy")
#: lm-eval's MMLU prompt (lm_eval/tasks/mmlu/default/_default_template_yaml)
MC_TEXT = "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"


def write_tasks(folder: Path, data_dir: Path, per_subject: int = 5) -> Path:
    """Per subject: `tiny_mmlu_<s>` (letters, multiple choice), `tiny_mmlu_text_<s>` (full option
    text: multi-token choices); the groups `tiny_mmlu` and `tiny_mmlu_text`; and
    `tiny_mmlu_gen` (generate_until with a regex filter on the first subject)."""
    from evalkit.task import DataSource, get_task

    folder.mkdir(parents=True, exist_ok=True)
    for subject in SUBJECTS:
        data = get_task(f"mmlu_{subject}").load(DataSource(data_dir, False))
        for split, rows in (("test", data.samples[:per_subject]), ("dev", data.fewshot[subject])):
            with (folder / f"{subject}_{split}.jsonl").open("w", encoding="utf-8") as fh:
                for s in rows:
                    fh.write(json.dumps({"question": s.input, "choices": list(s.choices), "answer": s.target}) + "\n")
        files = (f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {folder / f'{subject}_test.jsonl'}\n"
                 f"    dev: {folder / f'{subject}_dev.jsonl'}\ntest_split: test\nfewshot_split: dev\n"
                 "fewshot_config:\n  sampler: first_n\n")
        description = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
        (folder / f"mc_{subject}.yaml").write_text(
            f"task: tiny_mmlu_{subject}\n{files}output_type: multiple_choice\n"
            f"doc_to_text: {json.dumps(MC_TEXT)}\ndoc_to_choice: [\"A\", \"B\", \"C\", \"D\"]\ndoc_to_target: answer\n"
            f"description: {json.dumps(description)}\n"
            "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n", encoding="utf-8")
        (folder / f"text_{subject}.yaml").write_text(
            f"task: tiny_mmlu_text_{subject}\n{files}output_type: multiple_choice\n"
            "doc_to_text: \"Question: {{question.strip()}}\\nAnswer:\"\ndoc_to_choice: \"{{choices}}\"\n"
            "doc_to_target: answer\nmetric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
            "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n", encoding="utf-8")
    for group, prefix in (("tiny_mmlu", "tiny_mmlu_"), ("tiny_mmlu_text", "tiny_mmlu_text_")):
        members = "".join(f"  - {prefix}{s}\n" for s in SUBJECTS)
        (folder / f"group_{group}.yaml").write_text(
            f"group: {group}\ntask:\n{members}aggregate_metric_list:\n  - metric: acc\n    weight_by_size: true\n"
            "metadata:\n  version: 1\n", encoding="utf-8")
    first = SUBJECTS[0]
    (folder / "gen.yaml").write_text(
        f"task: tiny_mmlu_gen\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {folder / f'{first}_test.jsonl'}\n"
        "test_split: test\noutput_type: generate_until\n"
        f"doc_to_text: {json.dumps(MC_TEXT)}\n"
        "doc_to_target: \"{{['A', 'B', 'C', 'D'][answer]}}\"\n"
        "generation_kwargs:\n  until: [\"\\n\\n\", \"Question:\"]\n  max_gen_toks: 12\n  do_sample: false\n"
        "filter_list:\n  - name: letter\n    filter:\n      - function: regex\n        regex_pattern: \"([ABCD])\"\n"
        "      - function: take_first\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n", encoding="utf-8")
    return folder
