"""Per-subject breakdowns and reliability diagrams (tables via pandas, figures via matplotlib)."""

from __future__ import annotations

import base64
import io
import math
from typing import TYPE_CHECKING

import numpy as np

from evalkit.metrics.calibration import reliability_bins
from evalkit.metrics.stats import wilson_interval
from evalkit.reports.frames import RunData, RunSet

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def subject_table(runset: RunSet, task: str) -> pd.DataFrame:
    """One row per (subtask, model): accuracy over the scored samples with a Wilson CI."""
    import pandas as pd

    rows = []
    for run in (r for r in runset.runs if r.task == task):
        scored = ~np.isnan(run.values)
        for subject in np.unique(run.subtasks):
            mask = scored & (run.subtasks == subject)
            n = int(mask.sum())
            value = float(run.values[mask].mean()) if n else math.nan
            low, high = wilson_interval(float(run.values[mask].sum()), n) if n else (math.nan, math.nan)
            rows.append({"subtask": str(subject) or "(all)", "model": run.model, "value": value,
                         "ci_low": low, "ci_high": high, "n": n})
    return pd.DataFrame(rows, columns=["subtask", "model", "value", "ci_low", "ci_high", "n"])


def subject_bars(table: pd.DataFrame, title: str) -> Figure:
    """Grouped horizontal bars per subtask, one colour per model, 95% CI error bars."""
    from matplotlib.figure import Figure

    subjects = sorted(table["subtask"].unique())
    models = sorted(table["model"].unique())
    fig = Figure(figsize=(8, max(2.5, 0.28 * len(subjects) * max(1, len(models)) ** 0.5 + 1)))
    ax = fig.subplots()
    height = 0.8 / max(1, len(models))
    for k, model in enumerate(models):
        part = table[table["model"] == model].set_index("subtask").reindex(subjects)
        y = np.arange(len(subjects)) + k * height
        values = part["value"].to_numpy(dtype=float)
        err = np.vstack([values - part["ci_low"].to_numpy(dtype=float), part["ci_high"].to_numpy(dtype=float) - values])
        ax.barh(y, np.nan_to_num(values), height=height, xerr=np.nan_to_num(err), label=model, capsize=2)
    ax.set_yticks(np.arange(len(subjects)) + (len(models) - 1) * height / 2, subjects, fontsize=7)
    ax.set_ylim(len(subjects) - 0.1, -0.2 - height / 2)  # first subject on top
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (95% Wilson CI)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def reliability_figure(run: RunData) -> Figure | None:
    """Equal-width (15-bin) reliability diagram of the run's top-label confidences."""
    from matplotlib.figure import Figure

    keep = ~np.isnan(run.confidence) & ~np.isnan(run.values)
    if not keep.any():
        return None
    bins = reliability_bins(run.confidence[keep], run.values[keep])
    fig = Figure(figsize=(4, 4))
    ax = fig.subplots()
    centres = [(b.lower + b.upper) / 2 for b in bins]
    accuracy = [b.accuracy if b.count else 0.0 for b in bins]
    ax.bar(centres, accuracy, width=1 / len(bins), edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_xlabel("confidence (top-label probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"{run.model} · {run.task} (n={int(keep.sum())})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")  # keeps an outside legend
    return buf.getvalue()


def figure_png_base64(fig: Figure) -> str:
    return base64.b64encode(figure_png(fig)).decode("ascii")
