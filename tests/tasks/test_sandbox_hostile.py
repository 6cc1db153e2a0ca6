"""Hostile programs, each written as a HumanEval completion that attacks instead of solving.

For every one: the harness survives (this process and a planted victim process), the sample
is scored failed with a reason, nothing outside the sandbox changed, no process of the run
is left, and the run ends in bounded time (the < 60 s bound is a hang guard, not a speed test).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalkit.sandbox import RUN_MARKER_ENV, ExecResult, Limits, Sandbox
from evalkit.sandbox_launch import processes_of_run
from evalkit.tasks.humaneval import check_program

LIMITS = Limits(wall_seconds=4.0, cpu_seconds=2, memory_bytes=512 << 20, max_processes=16,
                file_size_bytes=1 << 20, disk_bytes=8 << 20, max_output_bytes=1 << 20, captured_bytes=4096)
PROBLEM = {
    "task_id": "Hostile/0",
    "prompt": 'import os\nimport sys\n\n\ndef add(a: int, b: int) -> int:\n    """Return a + b."""\n',
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
    "entry_point": "add",
}
HANG_GUARD_S = 60


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS)


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A process of the harness's user that hostile code would like to kill."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    planted = tmp_path / "home"
    planted.mkdir()
    (planted / "notes.txt").write_text("precious")
    monkeypatch.setenv("HOME", str(planted))
    return planted


def attack(sandbox: Sandbox, body: str, **values: object) -> ExecResult:
    """Run `body` as the completion of `add` (it never returns a + b) and check the common
    guarantees; `values` are substituted into the body with str.format."""
    completion = textwrap.indent(textwrap.dedent(body).strip().format(**values), "    ") + "\n    return None\n"
    started = time.monotonic()
    result = sandbox.run_sync(check_program(PROBLEM, completion))
    assert time.monotonic() - started < HANG_GUARD_S
    assert not result.passed, result
    assert result.reason and result.reason != "passed"
    left = processes_of_run(RUN_MARKER_ENV, result.run_id, result.uid)
    assert left == [], f"processes left behind: {left}"
    return result


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_fork_bomb(sandbox: Sandbox, victim: subprocess.Popen[bytes]) -> None:
    attack(sandbox, """
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    assert victim.poll() is None


def test_shell_fork_bomb(sandbox: Sandbox) -> None:
    attack(sandbox, """
        import subprocess
        subprocess.run(["bash", "-c", ":(){{ :|:& }};:"], timeout=30)
    """)


def test_thread_bomb(sandbox: Sandbox) -> None:
    result = attack(sandbox, """
        import threading, time
        while True:
            threading.Thread(target=time.sleep, args=(100,)).start()
    """)
    assert "can't start new thread" in result.reason or result.status == "timeout"


def test_infinite_loop(sandbox: Sandbox) -> None:
    result = attack(sandbox, "while True:\n    pass")
    assert result.status == "timeout" or "SIGXCPU" in result.reason or "SIGKILL" in result.reason


def test_sleep_forever_ignoring_sigterm(sandbox: Sandbox) -> None:
    result = attack(sandbox, """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(10 ** 6)
    """)
    assert result.status == "timeout"


def test_memory_bomb(sandbox: Sandbox) -> None:
    result = attack(sandbox, "hog = []\nwhile True:\n    hog.append(bytearray(50 << 20))")
    assert "MemoryError" in result.reason or "SIGKILL" in result.reason


def test_disk_fill_many_files(sandbox: Sandbox) -> None:
    before = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    result = attack(sandbox, """
        for i in range(100000):
            with open("fill%d" % i, "wb") as f:
                f.write(b"x" * (512 << 10))
    """)
    assert "No space left" in result.reason or "File too large" in result.reason or result.status == "timeout"
    after = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    assert not [n for n in after - before if n.startswith("evalkit-sandbox-")]


def test_one_huge_file(sandbox: Sandbox) -> None:
    result = attack(sandbox, 'open("big.bin", "wb").write(b"x" * (4 << 20))')
    assert "File too large" in result.reason or "SIGXFSZ" in result.reason or "No space" in result.reason


def test_delete_and_write_in_the_users_home(sandbox: Sandbox, home: Path) -> None:
    before = snapshot(home)
    attack(sandbox, """
        import shutil
        target = {home!r}
        for act in (lambda: os.remove(os.path.join(target, "notes.txt")),
                    lambda: open(os.path.join(target, "pwned.txt"), "w").write("owned"),
                    lambda: shutil.rmtree(target),
                    lambda: shutil.rmtree(os.path.expanduser("~"))):
            try:
                act()
            except OSError:
                pass
        assert not os.path.exists(os.path.join(target, "notes.txt")), "still there"
    """, home=str(home))
    assert snapshot(home) == before


def test_write_outside_the_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    targets = [str(tmp_path / "escape.txt"), str(repo / "escape.txt"), "/tmp/evalkit-escape.txt",
               "/etc/evalkit-escape.txt", "/dev/shm/evalkit-escape.txt"]
    result = attack(sandbox, """
        written = []
        for path in {targets!r}:
            try:
                with open(path, "w") as f:
                    f.write("escaped")
                written.append(path)
            except OSError:
                pass
        print(written)
        raise RuntimeError("done")
    """, targets=targets)
    assert result.reason == "failed: RuntimeError: done"
    for path in targets[:4]:
        assert not Path(path).exists(), path


def test_read_api_key_from_the_harness_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-planted-" + os.urandom(8).hex()
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    result = attack(sandbox, """
        found = [os.environ.get("OPENAI_API_KEY", "")]
        for path in ("/proc/{pid}/environ", "/proc/1/environ", "/proc/self/environ"):
            try:
                found.append(open(path, "rb").read().decode("latin-1"))
            except OSError:
                pass
        print(found)
        assert any("sk-planted" in f for f in found), "no key"
    """, pid=os.getpid())
    assert secret not in result.stdout and secret not in result.stderr
    assert "no key" in result.reason


def test_connect_to_a_local_server(sandbox: Sandbox) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        server.setblocking(False)
        port = server.getsockname()[1]
        attack(sandbox, """
            import socket
            with socket.create_connection(("127.0.0.1", {port}), timeout=2) as s:
                s.sendall(b"exfiltrate")
        """, port=port)
        with pytest.raises(BlockingIOError):
            server.accept()


def test_signal_and_kill_the_harness(sandbox: Sandbox, victim: subprocess.Popen[bytes]) -> None:
    attack(sandbox, """
        import signal
        for pid in ({harness}, {victim}, os.getppid(), 1, -1):
            for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        for group in ({harness_group}, 0):
            try:
                os.killpg(group, signal.SIGKILL)
            except OSError:
                pass
    """, harness=os.getpid(), victim=victim.pid, harness_group=os.getpgid(0))
    assert victim.poll() is None
    os.kill(os.getpid(), 0)  # still here, obviously; and not stopped


def test_os_exit_inside_the_test(sandbox: Sandbox) -> None:
    result = attack(sandbox, "os._exit(0)")
    assert "before the program finished" in result.reason


def test_gigabytes_on_stdout(sandbox: Sandbox) -> None:
    result = attack(sandbox, """
        block = "z" * (1 << 20)
        for _ in range(4096):
            sys.stdout.write(block)
    """)
    assert result.status == "output_limit"
    assert len(result.stdout) <= LIMITS.captured_bytes


def test_daemon_that_outlives_the_sample(sandbox: Sandbox) -> None:
    marker = f"{1000 + os.getpid() % 1000}.{os.urandom(3).hex().translate(str.maketrans('abcdef', '123456'))}"
    attack(sandbox, """
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/usr/bin/sleep", ["sleep", "{marker}"])
            os._exit(0)
        if os.fork() == 0:
            os.setsid()
            import time
            time.sleep(300)
    """, marker=marker)
    time.sleep(0.2)
    cmdlines = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                cmdlines.append(Path(f"/proc/{entry}/cmdline").read_bytes())
    assert not [c for c in cmdlines if marker.encode() in c]


def test_ctypes_segfault(sandbox: Sandbox) -> None:
    result = attack(sandbox, "import ctypes\nctypes.string_at(0)")
    assert "SIGSEGV" in result.reason


def test_sys_modules_tampering_to_fake_a_pass(sandbox: Sandbox) -> None:
    result = attack(sandbox, """
        import atexit, builtins
        atexit.register(os._exit, 0)
        sys.excepthook = lambda *args: None
        sys.modules["traceback"] = None
        sys.modules["os"] = None
        builtins.AssertionError = type("Harmless", (Exception,), {{}})
    """)
    assert "AssertionError" in result.reason


def test_deep_recursion(sandbox: Sandbox) -> None:
    result = attack(sandbox, """
        sys.setrecursionlimit(10 ** 8)
        def down(n):
            return down.__call__(n + 1) + 1  # through C: overflows the C stack
        down(0)
    """)
    assert any(word in result.reason for word in ("SIGSEGV", "RecursionError", "MemoryError", "wall-clock"))


def test_closing_its_own_output_and_stdin(sandbox: Sandbox) -> None:
    result = attack(sandbox, "for fd in (0, 1, 2):\n    os.close(fd)")
    assert result.status == "failed"


def test_reading_secrets_on_disk(sandbox: Sandbox, home: Path) -> None:
    (home / ".netrc").write_text("machine api.example.com password hunter2-planted")
    result = attack(sandbox, """
        leaked = []
        for path in ({netrc!r}, "/root/.bashrc", {pyproject!r}):
            try:
                leaked.append(open(path).read())
            except OSError:
                pass
        print(leaked)
        assert leaked, "nothing readable"
    """, netrc=str(home / ".netrc"), pyproject=str(Path(__file__).resolve().parents[2] / "pyproject.toml"))
    assert "hunter2" not in result.stdout
    assert "nothing readable" in result.reason


def test_harness_keeps_working_after_the_attacks(sandbox: Sandbox) -> None:
    honest = check_program(PROBLEM, "    return a + b\n")
    assert sandbox.run_sync(honest).passed
    assert os.getpgid(0) > 0 and signal.getsignal(signal.SIGTERM) is not None
