"""The efficiency panel every run's summary carries: time, throughput, latency, tokens, cost,
and the energy and CO2e of the computation by Strubell et al. (2019):

    p_t = PUE · t · (p_c + p_r + g · p_g) / 1000   kWh      (t in hours, powers in watts)
    CO2e = 0.954 · p_t                                lb      (US grid, EPA 2018)

Each power is measured where the machine exposes it (RAPL energy counters under
/sys/class/powercap for the CPU package and DRAM, NVML for GPUs) and assumed otherwise
(watts per busy core × the busy cores this process measured, watts per GB × its peak resident
memory); the panel names the source of every input. The counters cover the whole package,
not only this process, and a remote API's servers are not counted at all.
"""

from __future__ import annotations

import math
import resource
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import ConfigError

POWERCAP = Path("/sys/class/powercap")
LB_TO_KG = 0.45359237
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class EnergySettings:
    """Constants of the estimate; `--energy KEY=VALUE` overrides any of them."""

    #: power usage effectiveness of the data centre (Strubell: 1.58, the 2018 global average)
    pue: float = 1.58
    #: pounds of CO2e per kWh (Strubell: 0.954, the EPA's US average)
    co2e_lb_per_kwh: float = 0.954
    #: a busy core's share of a server CPU's TDP (e.g. 200 W / 20 cores), when RAPL is absent
    cpu_watts_per_core: float = 10.0
    #: DRAM power per GB resident (Green Algorithms, Lannelongue et al. 2021), when RAPL is absent
    dram_watts_per_gb: float = 0.3725
    #: GPUs working for the run when NVML cannot count them, and each one's draw
    gpus: float = 0.0
    gpu_watts: float = 300.0

    @staticmethod
    def parse(pairs: Sequence[str]) -> EnergySettings:
        known = {f.name for f in fields(EnergySettings)}
        values: dict[str, float] = {}
        for pair in pairs:
            key, sep, raw = pair.partition("=")
            if not sep or key not in known:
                raise ConfigError(f"--energy {pair!r}: expected KEY=NUMBER with KEY one of {', '.join(sorted(known))}")
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"--energy {key}: {raw!r} is not a number") from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"--energy {key}: must be a finite number >= 0, got {raw}")
            values[key] = value
        return replace(EnergySettings(), **values)


def latency_summary(seconds: Sequence[float]) -> dict[str, Any] | None:
    """n, mean and the 50/95/99th percentiles (numpy's default linear interpolation)."""
    if not seconds:
        return None
    arr = np.asarray(seconds, dtype=float)
    out: dict[str, Any] = {"n": int(arr.size), "mean": round(float(arr.mean()), 6)}
    for q, value in zip(PERCENTILES, np.percentile(arr, PERCENTILES), strict=True):
        out[f"p{q}"] = round(float(value), 6)
    return out


@dataclass(frozen=True)
class Reading:
    """Counters at one instant: RAPL microjoules per zone, NVML millijoules per GPU, CPU seconds."""

    cpu_seconds: float
    rapl_uj: Mapping[str, tuple[int, int]]  # zone name -> (energy_uj, max_energy_range_uj)
    gpu_mj: tuple[int, ...]


class EnergyMeter:
    """Reads the counters at the start of a task and again at its end."""

    def __init__(self, powercap: Path = POWERCAP) -> None:
        self.powercap = powercap
        self.start = self.read()

    def read(self) -> Reading:
        return Reading(_cpu_seconds(), _rapl_counters(self.powercap), _nvml_energy_mj())

    def panel(self, seconds: float, settings: EnergySettings) -> dict[str, Any]:
        return energy_panel(self.start, self.read(), seconds, settings, peak_rss_gb())


def energy_panel(start: Reading, end: Reading, seconds: float, settings: EnergySettings,
                 rss_gb: float) -> dict[str, Any]:
    """The estimate, with each input's value and where it came from."""
    t = max(seconds, 1e-9)
    rapl = _rapl_watts(start, end, t)
    busy_cores = max(end.cpu_seconds - start.cpu_seconds, 0.0) / t
    if "package" in rapl:
        p_c = (rapl["package"], "measured: RAPL package counters (the whole socket, not only this process)")
    else:
        p_c = (settings.cpu_watts_per_core * busy_cores,
               f"assumed: {settings.cpu_watts_per_core:g} W per busy core × {busy_cores:.3f} busy cores "
               "(CPU seconds of this process and its children ÷ wall seconds, measured)")
    if "dram" in rapl:
        p_r = (rapl["dram"], "measured: RAPL DRAM counters")
    else:
        p_r = (settings.dram_watts_per_gb * rss_gb,
               f"assumed: {settings.dram_watts_per_gb:g} W per GB × {rss_gb:.3f} GB peak resident memory (measured)")
    gpu = _gpu_inputs(start, end, t, settings)
    kwh = settings.pue * (t / 3600.0) * (p_c[0] + p_r[0] + gpu["g"] * gpu["p_g"]) / 1000.0
    co2e_lb = settings.co2e_lb_per_kwh * kwh
    return {
        "kwh": kwh, "co2e_lb": co2e_lb, "co2e_kg": co2e_lb * LB_TO_KG,
        "formula": "p_t = PUE · t · (p_c + p_r + g · p_g) / 1000 kWh; CO2e = co2e_lb_per_kwh · p_t lb "
                   "(Strubell et al. 2019)",
        "inputs": {
            "t_hours": {"value": t / 3600.0, "source": "measured: wall time of the task"},
            "p_c_watts": {"value": p_c[0], "source": p_c[1]},
            "p_r_watts": {"value": p_r[0], "source": p_r[1]},
            "g": {"value": gpu["g"], "source": gpu["g_source"]},
            "p_g_watts": {"value": gpu["p_g"], "source": gpu["p_g_source"]},
            "pue": {"value": settings.pue, "source": _constant_source("pue", settings.pue)},
            "co2e_lb_per_kwh": {"value": settings.co2e_lb_per_kwh,
                                "source": _constant_source("co2e_lb_per_kwh", settings.co2e_lb_per_kwh)},
        },
    }


def _constant_source(name: str, value: float) -> str:
    default = getattr(EnergySettings(), name)
    return "assumed: Strubell et al. 2019's value" if value == default else "given: --energy " + name


def _gpu_inputs(start: Reading, end: Reading, t: float, settings: EnergySettings) -> dict[str, Any]:
    if end.gpu_mj and len(end.gpu_mj) == len(start.gpu_mj):
        used = [(b - a) / 1000.0 / t for a, b in zip(start.gpu_mj, end.gpu_mj, strict=True)]
        return {"g": float(len(used)), "g_source": "measured: GPUs NVML reports",
                "p_g": sum(used) / len(used), "p_g_source": "measured: NVML energy counters (mean per GPU)"}
    return {"g": settings.gpus, "g_source": "assumed: no GPU counters (NVML absent); --energy gpus=N sets it",
            "p_g": settings.gpu_watts, "p_g_source": f"assumed: {settings.gpu_watts:g} W per GPU"}


def _rapl_watts(start: Reading, end: Reading, t: float) -> dict[str, float]:
    """Mean watts per kind of zone ("package", "dram"), summed over sockets; a counter that
    wrapped around adds its range once."""
    watts: dict[str, float] = {}
    for zone, (after, span) in end.rapl_uj.items():
        if zone not in start.rapl_uj:
            continue
        before = start.rapl_uj[zone][0]
        delta = after - before if after >= before else after + span - before
        kind = "dram" if zone.startswith("dram") else "package" if zone.startswith("package") else ""
        if kind:
            watts[kind] = watts.get(kind, 0.0) + delta / 1e6 / t
    return watts


def _rapl_counters(root: Path) -> dict[str, tuple[int, int]]:
    """Zone name (e.g. "package-0", "dram", made unique by its path) -> (energy_uj, max range).
    Unreadable counters (often root-only) count as absent."""
    out: dict[str, tuple[int, int]] = {}
    if not root.is_dir():
        return out
    for zone in sorted(root.glob("intel-rapl:*")):
        try:
            name = (zone / "name").read_text().strip()
            energy = int((zone / "energy_uj").read_text())
            span = int((zone / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue
        if name.startswith(("package", "dram")):
            out[f"{name}@{zone.name}"] = (energy, span)
    return out


def _nvml_energy_mj() -> tuple[int, ...]:
    try:
        import pynvml  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return ()
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        return tuple(int(pynvml.nvmlDeviceGetTotalEnergyConsumption(pynvml.nvmlDeviceGetHandleByIndex(i)))
                     for i in range(count))
    except Exception:  # no driver, or a GPU older than Volta: no counters
        return ()


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_gb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024)


def efficiency_panel(seconds: float, processed: int, stats: Sequence[Any],
                     energy: Mapping[str, Any] | None) -> dict[str, Any]:
    """The panel from the engines' stats (the model under test and every role) and the energy estimate."""
    t = seconds if seconds > 0 else math.nan
    sent = sum(s.sent for s in stats)
    prompt = sum(s.prompt_tokens for s in stats)
    completion = sum(s.completion_tokens for s in stats)
    costs = [s.cost_usd for s in stats if s.cost_usd is not None]
    latencies = [x for s in stats for x in s.latencies]
    first_tokens = [x for s in stats for x in s.first_token_seconds]
    bases = sorted({s.latency_basis for s in stats if s.latencies})
    return {
        "wall_seconds": round(seconds, 3),
        "samples_processed": processed,
        "requests": {"total": sum(s.requests for s in stats), "cache_hits": sum(s.cache_hits for s in stats),
                     "sent": sent, "per_second": _rate(sent, t)},
        "tokens": {"prompt": prompt, "completion": completion,
                   "prompt_per_second": _rate(prompt, t), "completion_per_second": _rate(completion, t)},
        "latency_seconds": latency_summary(latencies),
        "latency_basis": "; ".join(bases) if bases else "no request was sent",
        "time_to_first_token_seconds": latency_summary(first_tokens),
        **({} if first_tokens else {"time_to_first_token_note": "not measured: the backend does not stream"}),
        "cost_usd": round(sum(costs), 6) if costs else None,
        "energy": dict(energy) if energy is not None else None,
    }


def _rate(count: float, seconds: float) -> float | None:
    return round(count / seconds, 3) if count and seconds > 0 else None
