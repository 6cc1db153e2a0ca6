"""evalkit's rolling log-likelihood (`perplexity` task) against lm-eval's `loglikelihood_rolling`.

Usage (from the repository root):
    .venv/bin/python bench/bench_perplexity_vs_lmeval.py [--docs N] [--max-length L] [--lmeval-python PY]

Scores the first N FLORES English devtest articles (the `perplexity` task's default corpus) with
`hf:smollm2` in float32 through evalkit's backend (disjoint windows, stride = max_length) and, in
a child process of the lm-eval venv (default /work/lmeval-venv), with lm-eval's
`HFLM.loglikelihood_rolling` at the same max_length. Prints per-document agreement and the
word perplexity from both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LM_EVAL_CHILD = r"""
import json, sys
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
cfg = json.loads(sys.argv[1])
lm = HFLM(pretrained=cfg["model"], dtype="float32", max_length=cfg["max_length"], batch_size=1, device="cpu")
requests = [Instance("loglikelihood_rolling", {}, (text,), i) for i, text in enumerate(cfg["docs"])]
print(json.dumps(lm.loglikelihood_rolling(requests, disable_tqdm=True)))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lmeval-python", default="/work/lmeval-venv/bin/python")
    parser.add_argument("--data-dir", default=os.environ.get("EVALKIT_DATA_DIR", "/work/shared/data"))
    args = parser.parse_args()

    from evalkit.backends.hf import resolve_source
    from evalkit.models import create_backend, parse_model_spec
    from evalkit.task import DataSource
    from evalkit.tasks.perplexity import count_words, flores_documents
    from evalkit.types import RollingLoglikelihoodRequest

    docs = flores_documents(DataSource(Path(args.data_dir), allow_hub=False))[: args.docs]
    backend = create_backend(parse_model_spec("hf:smollm2", {"dtype": "float32"}))
    ours = [r.logprob for r in asyncio.run(backend.loglikelihood_rolling(
        [RollingLoglikelihoodRequest(d, args.max_length, args.max_length) for d in docs]))]
    source, _ = resolve_source("smollm2", None)
    cfg = {"model": str(source), "max_length": args.max_length, "docs": docs}
    child = subprocess.run([args.lmeval_python, "-c", LM_EVAL_CHILD, json.dumps(cfg)], capture_output=True,
                           text=True, check=True)
    theirs = json.loads(child.stdout.strip().splitlines()[-1])
    words = sum(count_words(d) for d in docs)
    worst = max(abs(a - b) / abs(b) for a, b in zip(ours, theirs, strict=True) if a is not None)
    print(f"{len(docs)} documents, max_length {args.max_length}, {words} words")
    print(f"largest relative difference per document: {worst:.2e}")
    total_ours = sum(x for x in ours if x is not None)
    print(f"word perplexity: evalkit {math.exp(-total_ours / words):.6f}  lm-eval {math.exp(-sum(theirs) / words):.6f}")
    sys.exit(0 if worst < 1e-4 else 1)


if __name__ == "__main__":
    main()
