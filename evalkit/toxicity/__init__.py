"""Toxicity scoring: the scorer protocol, its result type, the score cache and the metrics.

A toxicity scorer (detoxify, profanity-check, Perspective, an LLM judge, ...) is a plugin in
`registry.toxicity_scorers`; a task picks one by name (`get_scorer`). Scores are cached by
(scorer identity, text) like responses are; a text the scorer could not score is a
`TextScore` with an error, never a 0.
"""

from evalkit.toxicity.scorer import (
    ScorerFactory,
    TextScore,
    ToxicityScorer,
    get_scorer,
    register_scorer,
    scorer_names,
)

__all__ = ["ScorerFactory", "TextScore", "ToxicityScorer", "get_scorer", "register_scorer", "scorer_names"]
