"""What the offline scorers share: package checks and scoring a batch in a worker thread."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
from collections.abc import Callable, Sequence

from evalkit.errors import ConfigError
from evalkit.toxicity import TextScore


def package_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def require_module(module: str, scorer: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"-T scorer={scorer} needs the {module!r} package: {install}")


async def score_in_thread(predict: Callable[[list[str]], Sequence[float]], texts: Sequence[str],
                          batch_size: int = 64) -> list[TextScore]:
    """`predict` on batches in a worker thread (the event loop keeps running); a batch that
    raises makes each of its texts an error, a value outside [0, 1] makes that text one."""
    out: list[TextScore] = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        try:
            values = list(await asyncio.to_thread(predict, batch))
        except Exception as exc:  # the scorer failed on this batch: errors, not zeros
            out.extend(TextScore(error=f"{type(exc).__name__}: {exc}"[:300]) for _ in batch)
            continue
        if len(values) != len(batch):
            out.extend(TextScore(error=f"scorer returned {len(values)} values for {len(batch)} texts")
                       for _ in batch)
            continue
        out.extend(checked(v) for v in values)
    return out


def checked(value: object) -> TextScore:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return TextScore(error=f"not a number: {value!r}"[:200])
    if not 0.0 <= number <= 1.0:  # NaN fails this too
        return TextScore(error=f"score {number!r} is outside [0, 1]")
    return TextScore(number)
