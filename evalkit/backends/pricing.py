"""Token prices for cost accounting (`--model-args price_prompt_per_1k=...,price_completion_per_1k=...`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from evalkit.errors import ConfigError

PROMPT_KEY, COMPLETION_KEY = "price_prompt_per_1k", "price_completion_per_1k"


@dataclass(frozen=True)
class Pricing:
    """US dollars per 1000 prompt and completion tokens."""

    prompt_per_1k: float
    completion_per_1k: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_1k + completion_tokens * self.completion_per_1k) / 1000.0

    def to_dict(self) -> dict[str, float]:
        return {PROMPT_KEY: self.prompt_per_1k, COMPLETION_KEY: self.completion_per_1k}

    @staticmethod
    def from_options(options: Mapping[str, str], where: str = "--model-args") -> Pricing | None:
        """None when neither price is given; a missing one of the two counts as 0."""
        if PROMPT_KEY not in options and COMPLETION_KEY not in options:
            return None
        values = []
        for key in (PROMPT_KEY, COMPLETION_KEY):
            raw = options.get(key, "0")
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{where}: {key}={raw!r} is not a number") from None
            if value < 0:
                raise ConfigError(f"{where}: {key}={raw!r} must not be negative")
            values.append(value)
        return Pricing(values[0], values[1])
