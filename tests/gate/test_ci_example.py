"""The example CI of docs/ci.md, run locally: the GitHub Actions workflow's own commands (all
but the install step) on the embedded model against the committed compact baseline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "docs" / "ci"


def _workflow_commands() -> list[tuple[str, str]]:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    return [(s["name"], s["run"]) for s in steps if "run" in s]


def test_docs_show_the_committed_example_files() -> None:
    doc = (REPO / "docs" / "ci.md").read_text()
    for name in ("github-actions.yml", "gitlab-ci.yml", "evalkit-gate.toml"):
        assert (CI / name).read_text().strip() in doc, f"docs/ci.md must show docs/ci/{name} as it is"
    gitlab = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["evalkit-gate"]["script"]
    assert [c for c in gitlab if c.startswith("evalkit ")] == [c for _, c in _workflow_commands()
                                                                if c.startswith("evalkit ")]


def test_the_compact_baseline_holds_scores_only() -> None:
    (log,) = (CI / "evalkit-baselines" / "smollm2-mmlu").rglob("*.jsonl")
    text = log.read_text()
    assert '"compact":true' in text and '"prompt"' not in text and '"responses"' not in text
    questions = (SHARED_DATA / "mmlu" / "test" / "abstract_algebra_test.csv").read_text().splitlines()[1:31]
    assert all(q.lstrip('"')[:30] not in text for q in questions)


@pytest.mark.slow
def test_the_github_workflow_runs_locally_and_passes(tmp_path: Path) -> None:
    shutil.copytree(CI / "evalkit-baselines", tmp_path / "evalkit-baselines")
    shutil.copy(CI / "evalkit-gate.toml", tmp_path)
    summary = tmp_path / "step-summary.md"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "EVALKIT_DATA_DIR": str(SHARED_DATA), "HF_HUB_OFFLINE": "1", "GITHUB_STEP_SUMMARY": str(summary),
           "EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    for name, command in _workflow_commands():
        if name.startswith("Install"):
            continue  # this environment is installed already
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"step {name!r}: {result.stdout}\n{result.stderr}"
    for report in ("gate.xml", "gate.md", "gate.json"):
        assert (tmp_path / report).is_file()
    assert "mmlu_abstract_algebra:acc" in summary.read_text() and "PASS" in summary.read_text()
