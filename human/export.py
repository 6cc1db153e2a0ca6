"""Votes out of the store (CSV or JSONL, one row per vote, with the models unblinded) and the
results as text."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from evalkit.errors import ConfigError
from evalkit.human.results import Results
from evalkit.human.store import VoteStore

COLUMNS = ("vote_id", "annotator", "slot", "item_id", "question", "turn", "models", "shown_models", "answer",
           "reason", "attention", "shown_at", "submitted_at")


def vote_rows(store: VoteStore) -> list[dict[str, Any]]:
    items = store.items()
    checks = {(a.annotator, a.slot): a.attention for a in store.assignments()}
    rows = []
    for v in store.votes():
        item = items[v.item_id]
        rows.append({"vote_id": v.vote_id, "annotator": v.annotator, "slot": v.slot, "item_id": v.item_id,
                     "question": item["question"], "turn": item["turn"], "models": item["models"],
                     "shown_models": [item["models"][i] for i in v.shown], "answer": dict(v.answer),
                     "reason": v.reason, "attention": checks.get((v.annotator, v.slot)),
                     "shown_at": v.shown_at, "submitted_at": v.submitted_at})
    return rows


def write_votes(store: VoteStore, path: Path, fmt: str) -> int:
    rows = vote_rows(store)
    try:
        with path.open("w", encoding="utf-8", newline="") as fh:
            if fmt == "jsonl":
                fh.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)
            else:
                writer = csv.DictWriter(fh, fieldnames=COLUMNS)
                writer.writeheader()
                writer.writerows({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()}
                                 for r in rows)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the votes ({exc.strerror})") from None
    return len(rows)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    if isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(x, float) for x in value):
        return f"[{_cell(value[0])}, {_cell(value[1])}]"
    return str(value)


def results_text(results: Results) -> str:
    lines = [f"human evaluation · {results.design} · {results.n_votes} votes"]
    lines += [f"  {note}" for note in results.notes]
    for title, rows in results.tables.items():
        lines += ["", f"## {title}"]
        if not rows:
            lines.append("  (none)")
            continue
        header = list(rows[0])
        cells = [[_cell(r.get(k)) for k in header] for r in rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)
