#!/usr/bin/env bash
# Sets up everything evalkit's tests and its main job need, on a fresh machine or again
# (idempotent: a second run reuses what is there). Creates ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${EVALKIT_VENV:-.venv}
PIP="$VENV/bin/python -m pip"
WHEELS=${EVALKIT_WHEEL_CACHE:-$HOME/.cache/evalkit/wheels}
export PIP_DISABLE_PIP_VERSION_CHECK=1

step() { printf '\n== %s\n' "$*"; }

[ -x "$VENV/bin/python" ] || { step "virtualenv $VENV"; $PY -m venv "$VENV"; }

# --- system packages (Debian) ------------------------------------------------------------
# (sections below are added by the backend, sandbox and UI work)

# --- torch: the CPU build first, so nothing pulls the multi-GB CUDA build ------------------
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    step "torch (CPU)"
    $PIP install -q "torch==2.13.0"
fi

# --- llama-cpp-python: built once with safe CPU flags (see docs), wheel kept --------------

# --- evalkit and its extras ----------------------------------------------------------------
step "evalkit[test]"
$PIP install -q -e ".[test,data,reports]"

# --- embedded models (PyPI packages that carry GGUF files) -----------------------------------

step "ready: $VENV"
