"""The sandbox's launcher (trusted code that runs inside the sandbox before the program)
and the host-side process helpers of evalkit.sandbox."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

# Runs as `python -I -S -B -c LAUNCHER run_id result_fd uid cpu mem fsize nproc nofile`.
# stdin: token line, program length line, program bytes, then the program's own stdin.
# It drops to the sandbox uid (if given), sets the limits, runs the program, and writes
# "S" to the private result pipe before the program and the token after it returns.
LAUNCHER = r'''
import os, resource, sys

def _launch(argv):
    result_fd, uid, cpu, mem, fsize, nproc, nofile = (int(a) for a in argv[2:9])
    if uid >= 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    stdin = sys.stdin.buffer
    token = stdin.readline().rstrip(b"\n")
    source = stdin.read(int(stdin.readline()))
    mine = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                mine += os.stat("/proc/" + entry).st_uid == os.getuid()
            except OSError:
                pass
    for res, soft, hard in ((resource.RLIMIT_CPU, cpu, cpu + 1), (resource.RLIMIT_AS, mem, mem),
                            (resource.RLIMIT_FSIZE, fsize, fsize), (resource.RLIMIT_NOFILE, nofile, nofile),
                            (resource.RLIMIT_NPROC, nproc + mine, nproc + mine), (resource.RLIMIT_CORE, 0, 0)):
        resource.setrlimit(res, (soft, hard))
    write, exit_now = os.write, os._exit
    stdout = sys.stdout
    write(result_fd, b"S")
    try:
        exec(compile(source, "program.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    except BaseException as exc:
        try:
            stdout.flush()
        except BaseException:
            pass
        try:  # imported only now: it is slow to import, and most programs pass
            import traceback
            message = traceback.format_exc()
        except BaseException:
            message = "%s: %s\n" % (type(exc).__name__, exc)
        try:
            write(2, message.encode("utf-8", "replace"))
        except BaseException:
            pass
        exit_now(1)
    try:
        stdout.flush()
    except BaseException:
        pass
    write(result_fd, token)
    exit_now(0)

_launch(sys.argv)
'''


def sandbox_python() -> str:
    """The base interpreter (not a venv's): run with -I -S, it needs only the stdlib."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def python_roots(python: str) -> list[str]:
    """Directories the sandbox must see for `python` and its stdlib (beyond /usr)."""
    candidates = {os.path.realpath(sys.base_prefix), str(Path(python).parent.parent)}
    roots = sorted(c for c in candidates if c != "/" and c != "/usr" and not c.startswith("/usr/"))
    return [r for r in roots if not any(r != o and r.startswith(o + "/") for o in roots)]


def count_uid_processes(uid: int) -> int:
    """Live (non-zombie) processes owned by `uid`."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        count += state != "Z"
    return count


def marked_processes(env_name: str, run_id: str) -> list[int]:
    """Processes whose environment carries this run's marker (same-uid runs only)."""
    marker = f"{env_name}={run_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry))
    return found


def kill_marked_processes(env_name: str, run_id: str, rounds: int = 50) -> None:
    for _ in range(rounds):
        pids = marked_processes(env_name, run_id)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def processes_of_run(env_name: str, run_id: str, uid: int | None) -> list[int]:
    """Live processes of one sandbox run, found by its marker (environment or command line)
    or its uid; negative entries stand for "some process of that uid". Tests use this."""
    alive = marked_processes(env_name, run_id)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if run_id.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    alive.append(int(entry))
            except OSError:
                pass
    if uid is not None and count_uid_processes(uid):
        alive.append(-uid)
    return alive


def bwrap_prefix(disk_bytes: int, python: str, workdir: str) -> list[str]:
    """bubblewrap: new namespaces, a minimal read-only root, a size-limited tmpfs workdir."""
    args = ["bwrap", "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:  # privileged bwrap: no user namespace, so the launcher can drop to its own uid
        args += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        args += ["--unshare-all"]
    args += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for name in ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group"):
        args += ["--ro-bind-try", name, name]
    args += ["--dev", "/dev", "--proc", "/proc",
             "--perms", "1777", "--size", str(disk_bytes), "--tmpfs", workdir]
    for root in python_roots(python):
        for parent in reversed(Path(root).parents[:-1]):  # readable parents for the drop uid
            args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", root, root]
    return args


def unshare_prefix() -> list[str]:
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--pid", "--net", "--ipc", "--uts", "--mount", "--fork", "--kill-child", "--mount-proc"]


def read_available(fd: int, limit: int = 4096) -> bytes:
    os.set_blocking(fd, False)
    data = b""
    try:
        while len(data) < limit:
            chunk = os.read(fd, limit)
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass
    return data
