#!/usr/bin/env bash
# The code gates, run by .ci/run before the tests: ruff, mypy --strict (core and plugin
# packages) and the import contracts (pyproject's [tool.importlinter]). Fails on any finding.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
cd "$ROOT"
echo "== ruff"
"$PY" -m ruff check evalkit tasks judges reports human tests bench
FLAT=$(bash .ci/flat_tree.sh "$(mktemp -d)")
trap 'rm -rf "$FLAT"' EXIT
echo "== mypy --strict (evalkit and its plugin packages; paths below are under evalkit/)"
(cd "$FLAT" && "$PY" -m mypy --config-file "$ROOT/pyproject.toml" --strict -p evalkit)
echo "== import contracts"
(cd "$FLAT" && PYTHONPATH="$FLAT" "$ROOT/.venv/bin/lint-imports" "$ROOT/pyproject.toml" --no-cache)
