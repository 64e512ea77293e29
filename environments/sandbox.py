"""Run untrusted Python (a student's code) in a separate, limited process.

Every run gets a fresh temporary directory as its working directory, a clean environment (no
API keys or other secrets), stdin closed, and these limits, set by the kernel before the code
runs:

- CPU time (``RLIMIT_CPU``) and wall time (the parent kills the process group);
- memory (``RLIMIT_AS``): a huge allocation raises ``MemoryError`` inside the child;
- file size (``RLIMIT_FSIZE``): also bounds stdout and stderr, which go to files; the parent reads
  back at most ``output_chars`` of each;
- open files (``RLIMIT_NOFILE``) and no core dumps.

How far the rest goes depends on what the machine permits, and ``SandboxResult.isolation`` says
which applied:

- ``namespace`` (running as root with ``unshare`` and ``setpriv`` from util-linux, as in CI): the
  code runs in new network and PID namespaces as an unprivileged user id of its own. It has no
  network at all (not even loopback), it cannot write anything it does not own (everything outside
  its directory except world-writable places, which the audit hook below covers), the process
  limit (``RLIMIT_NPROC``) counts only its own processes, and when it ends or is killed the kernel
  ends every process it started.
- ``audit-hook`` (anywhere else): a plain child process; sockets are refused by the audit hook, and
  so is starting any process (a fork bomb fails at its first fork).

In both, a Python audit hook (PEP 578) installed before the code runs refuses: writing, creating,
renaming or deleting files outside the working directory; running other programs
(``subprocess``, ``os.system``, ``os.exec*``, ``os.posix_spawn``); signalling other processes;
changing resource limits; and loading ``ctypes`` (which could sidestep the hook). The hook is a
Python-level guard, not a kernel boundary: the kernel limits and, where available, the namespaces
and the separate user id are what contain native code.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

Isolation = Literal["namespace", "audit-hook"]
Status = Literal["ok", "error", "timeout", "cpu_limit", "memory_limit", "file_limit"]
#: Base of the user ids sandboxes run as (namespace isolation): one id per parent process, so the
#: process limit of one sandbox never counts another program's processes.
_UID_BASE = 1_500_000_000

# The child's first code: set the limits, install the audit hook, then run main.py. Kept as one
# string so that the child needs nothing from teachloop (it may run under another interpreter).
_BOOTSTRAP = r"""
import json, os, resource, sys
cfg = json.loads(sys.argv[1])
if os.getpid() == 1:  # init of a new PID namespace ignores fatal signals such as SIGXCPU: work in a child
    child = os.fork()
    if child:
        code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        os._exit(128 - code if code < 0 else code)
for name, value in cfg["limits"].items():
    kind = getattr(resource, name)
    resource.setrlimit(kind, (value, value + 1 if name == "RLIMIT_CPU" else value))
ROOT = os.path.realpath(os.getcwd())
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (1,),
    "os.symlink": (1,), "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,),
    "os.mkfifo": (0,), "os.mknod": (0,), "os.setxattr": (0,), "os.removexattr": (0,),
    "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (1,),
}
BLOCKED = {
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "pty.spawn",
    "os.kill", "os.killpg", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata",
}
BLOCKED |= set(cfg["also_blocked"])
BLOCKED_MODULES = {"ctypes", "_ctypes", "_posixsubprocess", "cffi"}

def inside(path):
    if isinstance(path, int) or path is None:
        return True
    real = os.path.realpath(os.fsdecode(os.fspath(path)))
    return real == ROOT or real.startswith(ROOT + os.sep) or real == os.devnull

def hook(event, args):
    if event in BLOCKED or any(event.startswith(p) for p in cfg["blocked_prefixes"]):
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "import" and args[0].split(".")[0] in BLOCKED_MODULES:
        raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
    if event == "open":
        path, mode, flags = args
        writes = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & WRITE_FLAGS)
        if writes and not inside(path):
            raise PermissionError(f"sandbox: writing {path!r} is not allowed (only inside {ROOT})")
    elif event in PATH_EVENTS:
        for i in PATH_EVENTS[event]:
            if i < len(args) and not inside(args[i]):
                raise PermissionError(f"sandbox: {event} on {args[i]!r} is not allowed (only inside {ROOT})")

with open("main.py", encoding="utf-8") as f:
    source = f.read()
sys.addaudithook(hook)
sys.argv = ["main.py"]
exec(compile(source, "main.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
"""


class SandboxLimits(BaseModel):
    """Resource limits of one sandboxed run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_seconds: int = Field(3, ge=1, description="CPU time before the kernel stops the code")
    wall_seconds: float = Field(8.0, gt=0, description="wall time before the process group is killed")
    memory_mb: int = Field(512, ge=64, description="address space (RLIMIT_AS)")
    processes: int = Field(16, ge=1, description="processes and threads (namespace isolation only)")
    file_mb: int = Field(4, ge=1, description="largest file the code may write, stdout and stderr included")
    open_files: int = Field(64, ge=16)
    output_chars: int = Field(4000, ge=0, description="characters of stdout and of stderr kept")
    isolation: Literal["auto", "audit-hook"] = Field(
        "auto", description="auto: namespaces and a separate user id where permitted; audit-hook: never"
    )


class SandboxResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Status
    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float
    isolation: Isolation

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def reason(self) -> str:
        """One line saying why a run failed (the last line of its traceback for an error)."""
        if self.status != "error":
            return self.status.replace("_", " ")
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit code {self.exit_code}"


def _world_executable(path: Path) -> bool:
    """Whether a user with no relation to the file's owner can run it (every parent searchable)."""
    real = path.resolve()
    try:
        if not real.is_file() or not real.stat().st_mode & stat.S_IXOTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in real.parents)
    except OSError:
        return False


def _sandbox_python() -> Path | None:
    """An interpreter the sandbox user can run: this one if reachable, else the system's."""
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate and _world_executable(Path(candidate)):
            return Path(candidate).resolve()
    return None


def _namespace_prefix(uid: int) -> list[str]:
    return [
        "unshare", "--net", "--pid", "--fork", "--kill-child", "--",
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--",
    ]  # fmt: skip


@functools.cache
def _namespaces_work(python: Path, uid: int) -> bool:
    """Probe once per process whether namespaces and the user switch are permitted here."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        return False
    try:
        probe = subprocess.run(
            [*_namespace_prefix(uid), str(python), "-I", "-c", "pass"],
            capture_output=True,
            timeout=30,
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    if probe.returncode != 0:
        log.info("sandbox: namespaces not permitted here (%s); using the audit hook", probe.stderr[-200:])
    return probe.returncode == 0


def _read_capped(path: Path, chars: int) -> str:
    with path.open("rb") as f:
        return f.read(chars * 4).decode("utf-8", errors="replace")[:chars]


def _status(returncode: int, timed_out: bool, stderr: str) -> Status:
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "ok"
    # a fatal signal shows as -N, or as 128 + N from the namespace's init (see _BOOTSTRAP)
    if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return "cpu_limit"
    if returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        return "file_limit"
    if "MemoryError" in stderr:
        return "memory_limit"
    if "File too large" in stderr:  # Python ignores SIGXFSZ, so the write fails instead
        return "file_limit"
    return "error"


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` as a script in a fresh sandbox and report how it ended."""
    limits = limits or SandboxLimits()
    uid = _UID_BASE + os.getpid() % 1_000_000
    python = _sandbox_python() if limits.isolation == "auto" else None
    isolation: Isolation = "namespace" if python and _namespaces_work(python, uid) else "audit-hook"
    kernel_limits = {
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_AS": limits.memory_mb * 2**20,
        "RLIMIT_FSIZE": limits.file_mb * 2**20,
        "RLIMIT_NOFILE": limits.open_files,
        "RLIMIT_CORE": 0,
    }
    if isolation == "namespace":
        kernel_limits["RLIMIT_NPROC"] = limits.processes
        also_blocked: list[str] = []
        blocked_prefixes: list[str] = []
    else:  # no kernel boundary for processes or network: refuse them outright
        also_blocked = ["os.fork", "os.forkpty"]
        blocked_prefixes = ["socket."]
    cfg = json.dumps(
        {"limits": kernel_limits, "also_blocked": also_blocked, "blocked_prefixes": blocked_prefixes}
    )
    root = Path(tempfile.mkdtemp(prefix="teachloop-sandbox-"))
    box, out = root / "box", root / "out"
    box.mkdir()
    out.mkdir(mode=0o700)
    try:
        (box / "main.py").write_text(code, encoding="utf-8")
        if isolation == "namespace":
            os.chmod(root, 0o711)
            os.chown(box, uid, uid)
            command = [*_namespace_prefix(uid), str(python), "-I", "-B", "-c", _BOOTSTRAP, cfg]
        else:
            command = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, cfg]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(box)}
        start = time.perf_counter()
        with (out / "stdout").open("wb") as fo, (out / "stderr").open("wb") as fe:
            proc = subprocess.Popen(
                command,
                cwd=box,
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                env=env,
                start_new_session=True,
            )
            timed_out = False
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # whatever the code left in its group
                proc.wait()
        seconds = time.perf_counter() - start
        stdout = _read_capped(out / "stdout", limits.output_chars)
        stderr = _read_capped(out / "stderr", limits.output_chars)
        return SandboxResult(
            status=_status(proc.returncode, timed_out, stderr),
            exit_code=None if timed_out else proc.returncode,
            stdout=stdout,
            stderr=stderr,
            seconds=round(seconds, 3),
            isolation=isolation,
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
