"""A helper for a project's own pytest suite: assert "no regression vs baseline" on a run.

    from evalkit.gate.testing import assert_no_regression

    def test_no_regression():
        assert_no_regression("evalkit-baselines/main", "runs/", tolerance=0.01)

It runs the same comparison as `evalkit gate` and raises AssertionError with the gate's table
when it fails (and, unless `allow_inconclusive`, when it is inconclusive). Keyword arguments
are the gate's settings (`tolerance`, `relative_tolerance`, `alpha`, `min_samples`, `metrics`
as ["TASK:METRIC", ...], `by`, ...), applied over `config` (a TOML path) like the CLI's flags.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.gate import GateReport, run_gate
from evalkit.gate.baseline import baselines_dir
from evalkit.gate.config import load_config, with_overrides
from evalkit.gate.decide import FAIL, INCONCLUSIVE
from evalkit.gate.outputs import terminal_table


def assert_no_regression(baseline: str | Path, candidate: str | Path, *, config: str | Path | None = None,
                         baselines: Path | None = None, allow_inconclusive: bool = False,
                         **settings: Any) -> GateReport:
    """The gate's report when it passes; AssertionError with its table otherwise."""
    gate_config = with_overrides(load_config(Path(config) if config else None), **settings)
    report = run_gate(str(baseline), str(candidate), gate_config, baselines_dir(baselines))
    bad = {FAIL} if allow_inconclusive else {FAIL, INCONCLUSIVE}
    if any(v.status in bad for v in report.verdicts):
        table = terminal_table(report.verdicts, report.tasks, report.status, report.exit_code)
        raise AssertionError(f"evalkit gate: {report.status} vs baseline {baseline}\n{table}")
    return report
