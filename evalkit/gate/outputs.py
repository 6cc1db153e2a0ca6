"""The gate's outputs: a terminal table, JUnit XML, Markdown and JSON.

JUnit: one <testsuite> per task, one <testcase> per gated metric (and group); a regression is
a <failure> whose message has the change, its CI and the p-values; an inconclusive result is
<skipped> with the reason (CI systems show it as neither green nor red). The layout follows
the widely used Jenkins/Ant JUnit schema (tests/gate/junit-10.xsd validates it).
"""

from __future__ import annotations

import math
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from evalkit.gate.compare import TaskPairing
from evalkit.gate.decide import FAIL, INCONCLUSIVE, RULE, Verdict
from evalkit.log.build import now

JSON_SCHEMA = "evalkit.gate"


def _num(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.{digits}f}"


def _ci(v: Verdict) -> str:
    return f"[{v.ci_low:+.4f}, {v.ci_high:+.4f}]"


def _p(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.3g}"


def _row(v: Verdict) -> list[str]:
    return [v.status.upper(), v.name, str(v.n), _num(v.baseline), _num(v.candidate), f"{v.change:+.4f}", _ci(v),
            _num(v.tolerance), _p(v.p_regression_holm), _p(v.mcnemar_holm), _num(v.mde)]


HEADER = ["status", "task:metric", "n", "baseline", "candidate", "change", "95% CI", "tolerance",
          "Holm p", "McNemar Holm p", "MDE"]


def terminal_table(verdicts: Sequence[Verdict], tasks: Sequence[TaskPairing], status: str, code: int) -> str:
    from evalkit.report_text import _table

    lines = [_table([_row(v) for v in verdicts], HEADER), ""]
    lines += [f"{v.name}: {v.reason}" for v in verdicts if v.status != "pass"]
    lines += [_pairing_note(t) for t in tasks if _pairing_note(t)]
    lines += [f"rule: {RULE}", f"gate: {status.upper()} (exit {code})"]
    return "\n".join(lines)


def _pairing_note(t: TaskPairing) -> str:
    parts = [f"{n} {what}" for n, what in ((t.only_baseline, "only in the baseline"),
                                           (t.only_candidate, "only in the candidate"),
                                           (t.errors_baseline, "errors in the baseline"),
                                           (t.errors_candidate, "errors in the candidate")) if n]
    parts += list(t.notes)
    return f"{t.task}: compared {t.n_shared} shared samples; " + "; ".join(parts) if parts else ""


def markdown(verdicts: Sequence[Verdict], tasks: Sequence[TaskPairing], status: str, code: int) -> str:
    icon = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️"}
    lines = [f"## evalkit gate: {icon.get(status, '')} {status.upper()} (exit {code})", "",
             "| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    for v in verdicts:
        cells = _row(v)
        cells[0] = f"{icon[v.status]} {cells[0]}"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    notes = [f"- **{v.name}**: {v.reason}" for v in verdicts if v.status != "pass"]
    notes += [f"- {_pairing_note(t)}" for t in tasks if _pairing_note(t)]
    return "\n".join([*lines, "", *notes, "", f"Decision rule: {RULE}.", ""])


def junit(verdicts: Sequence[Verdict], tasks: Sequence[TaskPairing]) -> bytes:
    root = ET.Element("testsuites", name="evalkit gate", tests=str(len(verdicts)),
                      failures=str(sum(v.status == FAIL for v in verdicts)), errors="0",
                      skipped=str(sum(v.status == INCONCLUSIVE for v in verdicts)), time="0")
    stamp, host = now()[:19], socket.gethostname()
    for index, task in enumerate(tasks):
        mine = [v for v in verdicts if v.task == task.task]
        suite = ET.SubElement(root, "testsuite", name=f"evalkit gate: {task.task}", tests=str(len(mine)),
                              failures=str(sum(v.status == FAIL for v in mine)), errors="0",
                              skipped=str(sum(v.status == INCONCLUSIVE for v in mine)), time="0",
                              timestamp=stamp, hostname=host, id=str(index), package="evalkit.gate")
        props = ET.SubElement(suite, "properties")
        for name, value in (("rule", RULE), ("baseline", task.baseline_path), ("candidate", task.candidate_path),
                            ("shared_samples", str(task.n_shared))):
            ET.SubElement(props, "property", name=name, value=value)
        for v in mine:
            case = ET.SubElement(suite, "testcase", name=v.name, classname=f"evalkit.gate.{v.task}", time="0")
            summary = (f"{v.metric}: change {v.change:+.4f} (baseline {_num(v.baseline)}, candidate "
                       f"{_num(v.candidate)}), 95% CI {_ci(v)}, n = {v.n}, tolerance {_num(v.tolerance)}")
            if v.status == FAIL:
                failure = ET.SubElement(case, "failure", type="regression", message=f"regression: {summary}")
                failure.text = v.reason
            elif v.status == INCONCLUSIVE:
                ET.SubElement(case, "skipped", message=f"inconclusive: {v.reason}")
            ET.SubElement(case, "system-out").text = f"{summary}; {v.reason}"
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def json_report(verdicts: Sequence[Verdict], tasks: Sequence[TaskPairing], status: str, code: int,
                candidate_only: Sequence[str]) -> dict[str, Any]:
    report: dict[str, Any] = _finite({
        "schema": JSON_SCHEMA, "version": 1, "status": status, "exit_code": code, "rule": RULE,
        "created_at": now(), "tasks": [t.to_dict() for t in tasks], "candidate_only_tasks": list(candidate_only),
        "results": [_verdict_json(v) for v in verdicts],
    })
    return report


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {
        "task": v.task, "group": v.group, "metric": v.metric, "status": v.status, "reason": v.reason, "n": v.n,
        "baseline": v.baseline, "candidate": v.candidate, "change_kind": v.change_kind, "change": v.change,
        "ci": [v.ci_low, v.ci_high], "ci_method": v.ci_method, "higher_is_better": v.higher_is_better,
        "ideal": v.ideal, "tolerance": v.tolerance, "tolerance_rule": v.tolerance_rule,
        "noise_floor": v.noise_floor, "p_regression": v.p_regression, "p_regression_holm": v.p_regression_holm,
        "mcnemar": v.mcnemar.to_dict() if v.mcnemar else None, "mcnemar_holm": v.mcnemar_holm,
        "mde": v.mde if math.isfinite(v.mde) else None, "mde_basis": v.mde_basis,
        "n_for_tolerance": v.n_for_tolerance,
    }
