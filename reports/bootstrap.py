"""Bootstrap glue for leaderboards: aligning runs of one task into a score matrix.

The statistics themselves (Poisson bootstrap weights, replicate means, paired differences,
percentile intervals) live in the core, `evalkit.metrics.paired`, so core code can use them
without importing reports; they are re-exported here under their old names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evalkit.metrics.paired import (
    ALPHA,
    MacroPairedDifference,
    TaskDifference,
    bootstrap_weights,
    combine_differences,
    distinct_columns,
    macro_paired_difference,
    percentile_interval,
    ranks_desc,
    replicate_means,
)
from evalkit.reports.frames import RunData

#: old names, kept for code that imported them from here
PairedDifference = MacroPairedDifference
paired_difference = macro_paired_difference

__all__ = [
    "ALPHA",
    "PairedDifference",
    "TaskDifference",
    "TaskMatrix",
    "bootstrap_weights",
    "combine_differences",
    "distinct_columns",
    "paired_difference",
    "percentile_interval",
    "ranks_desc",
    "replicate_means",
    "task_matrix",
]


@dataclass(frozen=True)
class TaskMatrix:
    """Per-sample scores of several models on one task: rows = models, columns = sample ids.

    NaN marks a sample the model did not answer (absent, or its request failed).
    """

    task: str
    models: tuple[str, ...]
    sample_ids: NDArray[np.str_]
    values: NDArray[np.float64]


def task_matrix(task: str, runs: Sequence[RunData]) -> TaskMatrix:
    """Align runs of one task by sample id (the union of their samples)."""
    if runs and all(np.array_equal(r.ids, runs[0].ids) for r in runs[1:]):
        # the common case: every model answered the same samples in the same order
        values = np.vstack([r.values for r in runs])
        return TaskMatrix(task, tuple(r.model for r in runs), runs[0].ids, values)
    all_ids = np.unique(np.concatenate([r.ids for r in runs])) if runs else np.array([], dtype=np.str_)
    values = np.full((len(runs), all_ids.size), np.nan)
    for row, run in enumerate(runs):
        values[row, np.searchsorted(all_ids, run.ids)] = run.values
    return TaskMatrix(task, tuple(r.model for r in runs), all_ids, values)
