"""CI regression gates: compare a candidate run with a baseline by paired tests.

`compare` pairs the logs (checks first), `decide` applies the tolerance rule with Holm's
correction and the minimum detectable effect, `outputs` writes the table, JUnit, Markdown and
JSON, `baseline` stores and finds baselines, `noise` measures the run-to-run spread. The CLI
(`evalkit gate`, `evalkit gate calibrate`, `evalkit baseline save`) is `evalkit.gate.cli`.
Exit codes: 0 pass, 1 regression, 2 bad input, 3 inconclusive (configurable).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalkit.gate.baseline import resolve_logs
from evalkit.gate.compare import TaskPairing, pair_runs
from evalkit.gate.config import GateConfig
from evalkit.gate.decide import Verdict, decide, exit_status
from evalkit.gate.noise import read_noise_floor


@dataclass(frozen=True)
class GateReport:
    verdicts: list[Verdict]
    tasks: list[TaskPairing]
    candidate_only: list[str]
    status: str
    exit_code: int


def run_gate(baseline: str, candidate: str, config: GateConfig, baselines_root: Path) -> GateReport:
    """Everything but the writing: resolve both runs, pair them, decide."""
    base_logs = resolve_logs(baseline, baselines_root, flag="--baseline")
    cand_logs = resolve_logs(candidate, baselines_root, flag="--candidate")
    noise = read_noise_floor(config.noise_floor) if config.noise_floor else {}
    pairing = pair_runs(base_logs, cand_logs, config)
    verdicts = decide(pairing.scores, config, noise)
    status, code = exit_status(verdicts, config)
    return GateReport(verdicts, pairing.tasks, pairing.candidate_only, status, code)


__all__ = ["GateConfig", "GateReport", "Verdict", "run_gate"]

