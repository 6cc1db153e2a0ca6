"""Scores cached like responses: the same SQLite cache (`evalkit/cache.py`), its own file,
keyed by sha256(scorer identity, text). Only successful scores are stored, so a text that
failed is scored again on the next run."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from evalkit.cache import ResponseCache, default_cache_dir
from evalkit.task import ScoreContext
from evalkit.toxicity.scorer import TextScore, ToxicityScorer
from evalkit.types import Response, canonical_json

CACHE_FILE = "toxicity.sqlite"


def score_key(identity: str, text: str) -> bytes:
    return hashlib.sha256(f"{identity}\x00{text}".encode()).digest()


class CachedScorer:
    """A scorer behind the score cache; texts already scored (by any run) are not rescored."""

    def __init__(self, scorer: ToxicityScorer, cache_dir: Path | None = None) -> None:
        self.scorer = scorer
        self.identity = canonical_json(scorer.describe())
        self._cache_dir = cache_dir
        self._cache: ResponseCache | None = None

    def _open(self) -> ResponseCache:
        if self._cache is None:  # opened on first use: building a task touches no files
            self._cache = ResponseCache((self._cache_dir or default_cache_dir()) / CACHE_FILE)
        return self._cache

    async def score(self, texts: Sequence[str], ctx: ScoreContext) -> list[TextScore]:
        if not self.scorer.cacheable:
            return await self.scorer.score(texts, ctx)
        cache = self._open()
        keys = [score_key(self.identity, t) for t in texts]
        found = {k: TextScore(float(r.meta["toxicity"])) for k, r in cache.get_many(keys).items()}
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        if missing:
            fresh = await self.scorer.score(missing, ctx)
            if len(fresh) != len(missing):
                raise RuntimeError(f"toxicity scorer {self.scorer.name!r} returned {len(fresh)} scores "
                                   f"for {len(missing)} texts")
            new = {score_key(self.identity, t): s for t, s in zip(missing, fresh, strict=True)}
            cache.put_many((k, Response(meta={"toxicity": s.value})) for k, s in new.items() if s.ok)
            found.update(new)
        return [found[k] for k in keys]

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
