"""Log-to-log stages (`base`): re-scoring (`rescore`) is the first; judging, perturbation
deltas, regression gates and human ratings are each another."""

from evalkit.stages.base import Stage, StageInput, StageOptions, joined_keys, run_stage

__all__ = ["Stage", "StageInput", "StageOptions", "joined_keys", "run_stage"]
