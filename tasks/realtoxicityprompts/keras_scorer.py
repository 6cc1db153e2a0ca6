"""`toxic-comment-classifier`: a Keras BiLSTM with detoxify's six Jigsaw labels (its `toxic`
score is used). It needs TensorFlow (a ~2 GB environment), so it is an optional extra that CI
does not install: without it, choosing this scorer is a one-line error saying how to install it.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.task import ScoreContext
from evalkit.tasks.realtoxicityprompts._common import (
    package_version,
    require_module,
    score_in_thread,
)
from evalkit.toxicity import TextScore, ToxicityScorer

MODULE = "toxic_comment_classifier"
INSTALL = ("pip install 'evalkit[toxicity-tf]' (tensorflow-cpu, then "
           "pip install --no-deps toxic-comment-classifier)")


class ToxicCommentClassifier(ToxicityScorer):
    name = "toxic-comment-classifier"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._predict: Any = None
        self._lock = asyncio.Lock()

    def version(self) -> str:
        return package_version("toxic-comment-classifier")

    def settings(self) -> dict[str, Any]:
        return {"label": "toxic"}

    def check(self, offline: bool) -> None:
        require_module(MODULE, self.name, INSTALL)
        require_module("tensorflow", self.name, INSTALL)

    async def score(self, texts: Sequence[str], ctx: ScoreContext) -> list[TextScore]:
        async with self._lock:
            if self._predict is None:
                self._predict = await asyncio.to_thread(load_predict)
        return await score_in_thread(self._predict, texts, 256)


def load_predict() -> Any:
    """The package's batch scorer of the `toxic` label. Its API differs across releases: the
    batch `classify` (per-label dicts) where there is one, else per-text `classify`."""
    module = importlib.import_module(MODULE)
    classifier = module.ToxicCommentClassifier() if hasattr(module, "ToxicCommentClassifier") else module
    batch = getattr(classifier, "classify_batch", None)
    if batch is not None:
        return lambda texts: [float(d["toxic"]) for d in batch(texts)]
    one = classifier.classify
    return lambda texts: [float(one(t)["toxic"]) for t in texts]
