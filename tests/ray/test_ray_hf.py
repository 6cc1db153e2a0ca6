"""Acceptance 1 on a real model: `mmlu_anatomy --limit 5` on hf:smollm2 with 2 Ray workers
gives the per-item log-likelihoods of a one-process run (within the batch-invariance bound,
1e-4 in fp32; bf16, the default on CPUs with native bf16, is not batch-invariant) and the same predictions; every sample is logged once and each request sent once. (That the
driver's cache makes a rerun send nothing is checked on the mock in test_ray_executor: a rerun
here would load two more replicas for no other check.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from evalkit.executors.config import RayOptions
from evalkit.plan import RunConfig
from evalkit.runner import run
from tests.conftest import SHARED_DATA
from tests.helpers import log_records, single_log
from tests.ray.test_ray_executor import samples_of

pytestmark = pytest.mark.slow


def hf_config(out: Path, cache: Path, ray: RayOptions | None) -> RunConfig:
    return RunConfig(model="hf:smollm2", model_args={"dtype": "float32"}, tasks=("mmlu_anatomy",), limit=5, output_dir=out, data_dir=SHARED_DATA,
                     cache_dir=cache, progress=False, ray=ray)


def test_smollm2_on_two_ray_workers_equals_one_process(ray_cluster: str, tmp_path: Path) -> None:
    asyncio.run(run(hf_config(tmp_path / "local", tmp_path / "cache-local", None)))
    ray = RayOptions(address="auto", workers=2, chunk_size=2)  # 3 batches over 2 workers
    asyncio.run(run(hf_config(tmp_path / "ray", tmp_path / "cache-ray", ray)))
    local, remote = samples_of(single_log(tmp_path / "local")), samples_of(single_log(tmp_path / "ray"))
    assert set(local) == set(remote) and len(remote) == 5
    for sid, record in local.items():
        ours = [r["logprob"] for r in remote[sid]["responses"]]
        theirs = [r["logprob"] for r in record["responses"]]
        assert ours == pytest.approx(theirs, abs=1e-4), sid
        assert remote[sid]["score"]["extracted"] == record["score"]["extracted"], sid
    ray_summary = log_records(single_log(tmp_path / "ray"))[-1]
    assert ray_summary["engine"]["sent"] == 20
