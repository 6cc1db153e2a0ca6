"""Judge prompt templates shipped in `templates.json` (FastChat's MT-Bench prompts, verbatim,
Apache-2.0; and evalkit's own, marked as such), chosen per protocol, turn and reference."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError
from evalkit.types import Message, stable_hash

TEMPLATES_FILE = Path(__file__).with_name("templates.json")


@dataclass(frozen=True)
class Template:
    name: str
    type: str  # "pairwise" | "single"
    verdict: str  # "pair" | "rating" | "pair-first-token"
    system_prompt: str
    prompt_template: str
    source: str
    license: str
    scale: tuple[int, int] = (1, 10)

    @property
    def multi_turn(self) -> bool:
        return "{question_2}" in self.prompt_template

    @property
    def uses_reference(self) -> bool:
        return "{ref_answer_1}" in self.prompt_template

    @property
    def hash(self) -> str:
        return stable_hash([self.name, self.system_prompt, self.prompt_template, self.verdict, list(self.scale)], 16)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "hash": self.hash, "source": self.source, "license": self.license}

    def render(self, fields: Mapping[str, str]) -> tuple[Message, ...]:
        try:
            user = self.prompt_template.format(**fields)
        except KeyError as exc:
            raise ConfigError(f"judge template {self.name!r} needs {exc.args[0]!r}, which this judgment lacks") from None
        return (Message("system", self.system_prompt), Message("user", user))

    def render_completion(self, fields: Mapping[str, str]) -> str:
        """One plain-text prompt ending in a cue for the verdict, for judges used as completion
        models (a small model follows "Verdict:" far better than a chat instruction)."""
        system, user = self.render(fields)
        cue = "Verdict:" if self.verdict.startswith("pair") else "Rating:"
        return f"{system.content}\n\n{user.content}\n\n{cue}"


@cache
def all_templates() -> dict[str, Template]:
    raw = json.loads(TEMPLATES_FILE.read_text(encoding="utf-8"))
    out: dict[str, Template] = {}
    for t in raw["templates"]:
        scale = tuple(t.get("scale") or (1, 10))
        out[t["name"]] = Template(t["name"], t["type"], t["verdict"], t["system_prompt"], t["prompt_template"],
                                  t["source"], t["license"], (int(scale[0]), int(scale[1])))
    return out


def get_template(name: str, protocol_type: str | None = None) -> Template:
    templates = all_templates()
    if name not in templates:
        raise ConfigError(f"unknown judge template {name!r} (known: {', '.join(sorted(templates))})")
    template = templates[name]
    if protocol_type is not None and template.type != protocol_type:
        raise ConfigError(f"judge template {name!r} is a {template.type} template; this protocol needs a "
                          f"{protocol_type} one")
    return template


#: (protocol type, verdict mode, multi-turn, with reference) -> template name
DEFAULTS: dict[tuple[str, str, bool, bool], str] = {
    ("pairwise", "text", False, False): "pair-v2",
    ("pairwise", "text", True, False): "pair-v2-multi-turn",
    ("pairwise", "text", False, True): "pair-math-v1",
    ("pairwise", "text", True, True): "pair-math-v1-multi-turn",
    ("pairwise", "prob", False, False): "evalkit-pair-verdict-first-v1",
    ("pairwise", "prob", True, False): "evalkit-pair-verdict-first-multi-turn-v1",
    ("single", "text", False, False): "single-v1",
    ("single", "text", True, False): "single-v1-multi-turn",
    ("single", "text", False, True): "single-math-v1",
    ("single", "text", True, True): "single-math-v1-multi-turn",
}


def default_template(kind: str, verdict: str, turn: int, has_reference: bool) -> Template:
    """FastChat's choice: the multi-turn prompt for turn 2, the math prompt where a reference
    answer exists. Probability-weighted verdicts have no reference-guided template (the
    reference is not shown to the judge; said in the docs)."""
    multi = turn > 1
    key = (kind, verdict, multi, has_reference and verdict == "text")
    if key not in DEFAULTS:
        raise ConfigError(f"no {verdict} template for {kind} judging (choose one with --template)")
    return get_template(DEFAULTS[key], kind)
