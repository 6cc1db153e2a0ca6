"""The efficiency panel: latency percentiles from scripted latencies, per-task counts, the energy
estimate equal to Strubell et al.'s formula applied to the inputs it states, and RAPL counters
read from a fake powercap tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.efficiency import EnergyMeter, EnergySettings, Reading, energy_panel, latency_summary
from evalkit.errors import ConfigError
from tests.helpers import log_records

LATENCIES = [0.12, 0.05, 0.9, 0.33, 0.41, 0.07, 1.5, 0.21, 0.26, 0.6]


def _run(tmp_path: Path, model: str, tasks: str = "humaneval", limit: int = 10, *extra: str) -> list[Path]:
    out = tmp_path / "runs"
    code = main(["run", "--model", model, "--tasks", tasks, "--limit", str(limit), "--output-dir", str(out),
                 "--no-cache", "--no-progress", *extra])
    assert code == 0
    return sorted(out.rglob("*.jsonl"))


def _panel(log: Path) -> dict[str, Any]:
    summary = log_records(log)[-1]
    assert summary["type"] == "summary"
    return summary["efficiency"]  # type: ignore[no-any-return]


def test_latency_percentiles_equal_numpy_on_scripted_latencies(tmp_path: Path) -> None:
    model = "mock:latencies=" + "|".join(map(str, LATENCIES)) + ",first_tokens=0.01|0.03"
    (log,) = _run(tmp_path, model)
    panel = _panel(log)
    expected = np.percentile(LATENCIES, [50, 95, 99])
    latency = panel["latency_seconds"]
    assert latency["n"] == len(LATENCIES)
    assert [latency["p50"], latency["p95"], latency["p99"]] == pytest.approx(expected, abs=1e-6)
    assert latency["mean"] == pytest.approx(np.mean(LATENCIES), abs=1e-6)
    assert panel["latency_basis"] == "per request, as the backend timed it"
    first = panel["time_to_first_token_seconds"]
    assert first["n"] == len(LATENCIES) and first["p50"] == pytest.approx(0.02)
    requests = panel["requests"]
    assert requests["sent"] == len(LATENCIES) and requests["cache_hits"] == 0
    tokens = panel["tokens"]
    engine = log_records(log)[-1]["engine"]
    assert tokens["prompt"] == engine["prompt_tokens"] > 0
    assert tokens["completion_per_second"] == pytest.approx(engine["completion_tokens"] / panel["wall_seconds"],
                                                            rel=0.02)


def test_without_own_times_a_request_waits_for_its_batch(tmp_path: Path) -> None:
    (log,) = _run(tmp_path, "mock:delay=0.05", limit=4)
    panel = _panel(log)
    assert panel["latency_basis"] == "the wall time of the batch a request was answered in"
    assert panel["latency_seconds"]["p50"] >= 0.05
    assert panel["time_to_first_token_seconds"] is None
    assert panel["time_to_first_token_note"].startswith("not measured")


def test_each_task_counts_only_its_own_requests(tmp_path: Path) -> None:
    logs = _run(tmp_path, "mock", "humaneval,humaneval_n5", 3)
    sent = {json.loads(p.read_text().splitlines()[0])["task"]["name"]: _panel(p)["requests"]["sent"] for p in logs}
    assert sent == {"humaneval": 3, "humaneval_n5": 15}


def test_energy_equals_the_formula_on_its_stated_inputs(tmp_path: Path) -> None:
    (log,) = _run(tmp_path, "mock", "humaneval", 3, "--energy", "pue=1.2", "--energy", "gpus=2",
                  "--energy", "gpu_watts=250")
    energy = _panel(log)["energy"]
    inputs = {k: v["value"] for k, v in energy["inputs"].items()}
    expected = inputs["pue"] * inputs["t_hours"] * (inputs["p_c_watts"] + inputs["p_r_watts"]
                                                    + inputs["g"] * inputs["p_g_watts"]) / 1000
    assert energy["kwh"] == pytest.approx(expected, rel=1e-12)
    assert energy["co2e_lb"] == pytest.approx(0.954 * expected, rel=1e-12)
    assert energy["co2e_kg"] == pytest.approx(0.954 * expected * 0.45359237, rel=1e-12)
    assert (inputs["pue"], inputs["g"], inputs["p_g_watts"]) == (1.2, 2.0, 250.0)
    sources = {k: v["source"] for k, v in energy["inputs"].items()}
    assert sources["pue"] == "given: --energy pue"
    assert sources["co2e_lb_per_kwh"].startswith("assumed: Strubell")
    assert sources["t_hours"].startswith("measured")


def _write_zone(root: Path, index: str, name: str, energy_uj: int, span: int = 2**32) -> None:
    zone = root / f"intel-rapl:{index}"
    zone.mkdir(parents=True, exist_ok=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{span}\n")


def test_rapl_counters_are_measured_power_with_wraparound(tmp_path: Path) -> None:
    root = tmp_path / "powercap"
    span = 10_000_000_000
    _write_zone(root, "0", "package-0", span - 5_000_000, span)  # wraps during the task
    _write_zone(root, "1", "package-1", 1_000_000, span)
    _write_zone(root, "0:0", "dram", 2_000_000, span)
    meter = EnergyMeter(root)
    _write_zone(root, "0", "package-0", 15_000_000, span)  # +20 J after wrapping
    _write_zone(root, "1", "package-1", 11_000_000, span)  # +10 J
    _write_zone(root, "0:0", "dram", 4_000_000, span)  # +2 J
    end = meter.read()
    panel = energy_panel(meter.start, end, 10.0, EnergySettings(), rss_gb=1.0)
    inputs = panel["inputs"]
    assert inputs["p_c_watts"]["value"] == pytest.approx(3.0)  # 30 J over 10 s
    assert inputs["p_r_watts"]["value"] == pytest.approx(0.2)
    assert inputs["p_c_watts"]["source"].startswith("measured: RAPL package")
    assert panel["kwh"] == pytest.approx(1.58 * (10 / 3600) * 3.2 / 1000)


def test_without_counters_power_is_assumed_from_busy_cores_and_memory() -> None:
    start, end = Reading(10.0, {}, ()), Reading(25.0, {}, ())
    panel = energy_panel(start, end, 10.0, EnergySettings(cpu_watts_per_core=12.0), rss_gb=2.0)
    inputs = panel["inputs"]
    assert inputs["p_c_watts"]["value"] == pytest.approx(12.0 * 1.5)  # 15 CPU seconds in 10 s
    assert inputs["p_r_watts"]["value"] == pytest.approx(0.3725 * 2.0)
    assert "assumed" in inputs["p_c_watts"]["source"] and "1.500 busy cores" in inputs["p_c_watts"]["source"]
    assert inputs["g"]["value"] == 0.0


def test_bad_energy_settings_fail_before_any_model_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("watts=3", "pue=high", "pue=-1", "pue"):
        with pytest.raises(ConfigError):
            EnergySettings.parse([bad])
    code = main(["run", "--model", "hf:/nonexistent", "--tasks", "humaneval", "--energy", "pue=x",
                 "--output-dir", str(tmp_path)])
    assert code == 2
    assert "--energy pue" in capsys.readouterr().err


def test_latency_summary_of_nothing_is_none() -> None:
    assert latency_summary([]) is None


def test_show_and_leaderboard_print_the_panel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, "mock:latencies=0.2|0.4", limit=2)
    capsys.readouterr()
    assert main(["show", str(tmp_path / "runs")]) == 0
    shown = capsys.readouterr().out
    assert "efficiency:" in shown and "latency: p50 0.300 s" in shown and "p_c_watts" in shown
    assert main(["leaderboard", str(tmp_path / "runs")]) == 0
    board = capsys.readouterr().out
    assert "efficiency per run" in board and "latency p95 s" in board
