#!/usr/bin/env bash
# Copies the sources into a tree where `evalkit` is one plain package (tasks/, judges/ and
# reports/ under it, as a non-editable install lays them out), so static tools (mypy,
# import-linter) see evalkit.tasks, evalkit.judges, evalkit.reports and evalkit.human. Prints the folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$(mktemp -d)}
rm -rf "$OUT/evalkit" && mkdir -p "$OUT"
cp -r "$ROOT/evalkit" "$OUT/evalkit"
for plugin in tasks judges reports human; do cp -r "$ROOT/$plugin" "$OUT/evalkit/$plugin"; done
find "$OUT/evalkit" -name __pycache__ -prune -exec rm -rf {} +
echo "$OUT"
