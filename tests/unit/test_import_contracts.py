"""The import contracts (pyproject's [tool.importlinter], run by .ci/lint.sh) cover every core
module, hold on this tree, and fail when a core module imports a plugin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contracts() -> list[dict]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_the_core_contract_names_every_core_module() -> None:
    core = set(_contracts()[0]["source_modules"])
    on_disk = {f"evalkit.{p.stem}" for p in (REPO / "evalkit").iterdir()
               if p.name != "__init__.py" and (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert on_disk - core == set(), "add these modules to the first import contract in pyproject.toml"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), str(REPO / "pyproject.toml"), "--no-cache"], cwd=tree,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)


def test_contracts_hold_and_a_wrong_import_breaks_them(tmp_path: Path) -> None:
    tree = Path(subprocess.run(["bash", str(REPO / ".ci" / "flat_tree.sh"), str(tmp_path)], check=True,
                               capture_output=True, text=True).stdout.strip())
    assert _lint(tree).returncode == 0
    runner = tree / "evalkit" / "runner.py"
    runner.write_text(runner.read_text() + "\nfrom evalkit.reports import leaderboard  # noqa\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "the core never imports tasks, judges or reports BROKEN" in result.stdout
    assert "evalkit.runner -> evalkit.reports.leaderboard" in result.stdout
