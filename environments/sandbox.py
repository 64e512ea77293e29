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
changing resource limits; loading ``ctypes`` (which could sidestep the hook); opening anything
under ``/proc`` or ``/dev/fd`` (another process's memory, this one's file descriptors), symbolic
links, and directories as file descriptors (``dir_fd`` tricks); and reaching the interpreter's
frames (``sys._getframe``, ``tb_frame``, ``gi_frame``, tracing and profiling hooks, ``gc``'s
object lists), so that the code cannot look at the code that called it. The hook is a
Python-level guard, not a kernel boundary: the kernel limits and, where available, the namespaces
and the separate user id are what contain native code.

Two ways to run code, and only one of them is a verdict:

- ``run_python(code)`` runs a script; ``ok`` says only that it exited with status 0, which a
  script can always do (``os._exit(0)``). Never score with it.
- ``run_tests(solution, tests, entry_point)`` is the verifier: the solution runs in a namespace of
  its own, and the tests (``check(candidate)``) in another that the solution cannot reach, with
  private copies of the builtins and of the standard-library modules the tests import (patching
  ``abs`` or ``math.fabs`` changes nothing for them); every value the candidate returns must be
  plain data (no object with its own ``__eq__``). A pass is reported by the harness after
  ``check`` returned, by writing a random per-run nonce to a file descriptor the solution never
  learns the contents for; exiting early, raising ``SystemExit``, killing itself, closing stdout,
  defining ``check`` or printing "all tests passed" leave no nonce, and the run is not ``ok``
  (status ``incomplete`` when the process still exited with 0). The code and tests reach the child
  through an anonymous file on stdin that is closed before the solution runs, so the tests'
  source is never on disk where the solution could read it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

Isolation = Literal["namespace", "audit-hook"]
Status = Literal["ok", "error", "incomplete", "timeout", "cpu_limit", "memory_limit", "file_limit"]
#: Base of the user ids sandboxes run as (namespace isolation): one id per parent process, so the
#: process limit of one sandbox never counts another program's processes.
_UID_BASE = 1_500_000_000
#: Most bytes of the result file read back (a nonce is 32).
_RESULT_BYTES = 256

# The child's code: set the limits, read the payload from stdin (then close it), install the audit
# hook, then run a script or the test harness. It runs inside ``exec`` with a copy of the builtins
# taken before any untrusted code, so the harness's own names cannot be patched under it. Kept as
# one string so that the child needs nothing from teachloop (it may run under another interpreter).
_BODY = r'''
import builtins, json, os, re, resource, sys


def _main():
    cfg = json.loads(sys.argv[1])
    result_fd = cfg["result_fd"]
    if os.getpid() == 1:  # init of a new PID namespace ignores fatal signals such as SIGXCPU: work in a child
        child = os.fork()
        if child:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)  # init keeps no copy of the payload or of the result file
            if result_fd is not None:
                os.close(result_fd)
            code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
            os._exit(128 - code if code < 0 else code)
    for name, value in cfg["limits"].items():
        kind = getattr(resource, name)
        resource.setrlimit(kind, (value, value + 1 if name == "RLIMIT_CPU" else value))
    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # the payload (code, tests, nonce) is gone before any untrusted code runs
    os.close(null)
    payload = json.loads(b"".join(chunks))
    del chunks
    _guard(cfg)
    if payload["mode"] == "script":
        source = payload.pop("code")
        sys.argv = ["main.py"]
        exec(compile(source, "main.py", "exec"), {"__name__": "__main__", "__builtins__": builtins})
        return
    _harness(payload, result_fd)


def _guard(cfg):
    """Install the audit hook. Frame access raises ValueError, which the standard library's
    fallbacks (namedtuple, typing, enum) expect from ``sys._getframe``; the rest PermissionError."""
    root = os.path.realpath(os.getcwd())
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    private = re.compile(r"/(proc|dev/fd|dev/std(in|out|err))(/|$)")
    path_events = {
        "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (1,),
        "os.chmod": (0,), "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,), "os.chdir": (0,),
        "os.mkfifo": (0,), "os.mknod": (0,), "os.setxattr": (0,), "os.removexattr": (0,),
        "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (1,),
    }
    blocked = {
        "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "pty.spawn",
        "os.kill", "os.killpg", "signal.pthread_kill", "resource.setrlimit", "resource.prlimit",
        "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "os.symlink", "sys.settrace", "sys.setprofile",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.addaudithook", "code.__new__",
    }
    blocked |= set(cfg["also_blocked"])
    blocked_modules = {"ctypes", "_ctypes", "_posixsubprocess", "cffi", "_testcapi", "_testinternalcapi"}
    frame_events = {"sys._getframe", "sys._current_frames"}
    frame_attributes = {"tb_frame", "gi_frame", "cr_frame", "ag_frame"}

    def inside(path):
        if isinstance(path, int) or path is None:
            return True
        real = os.path.realpath(os.fsdecode(os.fspath(path)))
        return real == root or real.startswith(root + os.sep) or real == os.devnull

    def hook(event, args):
        if event in frame_events or (event == "object.__getattr__" and args[1] in frame_attributes):
            raise ValueError(f"sandbox: {event} is not allowed (no access to the interpreter's frames)")
        if event in blocked or any(event.startswith(p) for p in cfg["blocked_prefixes"]):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and args[0].split(".")[0] in blocked_modules:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "open":
            path, mode, flags = args
            if path is not None and not isinstance(path, int):
                text = os.fsdecode(os.fspath(path))
                if private.match(os.path.abspath(text)) or private.match(os.path.realpath(text)):
                    raise PermissionError(f"sandbox: opening {path!r} is not allowed")
                if mode is None and os.path.isdir(text):  # os.open: a directory fd would allow dir_fd tricks
                    raise PermissionError(f"sandbox: opening the directory {path!r} is not allowed")
            writes = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & write_flags)
            if writes and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} is not allowed (only inside {root})")
        elif event in path_events:
            for i in path_events[event]:
                if i < len(args) and not inside(args[i]):
                    raise PermissionError(f"sandbox: {event} on {args[i]!r} is not allowed (only inside {root})")

    sys.addaudithook(hook)


def _private_modules(*sources):
    """Fresh copies of the standard-library modules the trusted code imports by a plain name, made
    before the solution runs: whatever it patches in ``sys.modules`` later, the tests keep theirs."""
    import ast
    import importlib.util

    names = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    copies = {}
    for name in sorted(names):
        if "." in name or name not in sys.stdlib_module_names or name in ("sys", "builtins"):
            continue
        try:
            spec = importlib.util.find_spec(name)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        except Exception:
            continue  # the tests get the shared module
        copies[name] = module
    return copies


def _harness(payload, result_fd):
    import traceback

    write, exit_, getpid, describe = os.write, os._exit, os.getpid, traceback.format_exception_only
    pid = getpid()
    nonce = payload.pop("nonce").encode()
    entry_point = payload["entry_point"]
    context, tests, solution = payload.pop("context"), payload.pop("tests"), payload.pop("solution")

    def fail(err):
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        try:
            message = "".join(describe(type(err), err)).strip().splitlines()[-1]
        except BaseException:
            message = type(err).__name__
        try:
            write(2, (message + "\n").encode("utf-8", "replace"))
        except BaseException:
            pass
        exit_(1)

    # the trusted side first: its own builtins and modules, its own copy of the prompt's helpers
    modules = _private_modules(context, tests)
    real_import = __builtins__["__import__"]

    def tests_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in modules:
            return modules[name]
        return real_import(name, globals, locals, fromlist, level)

    tests_builtins = dict(__builtins__)
    tests_builtins["__import__"] = tests_import
    scope = {"__name__": "__tests__", "__builtins__": tests_builtins}
    try:
        exec(compile(context, "prompt.py", "exec"), scope)
        exec(compile(tests, "tests.py", "exec"), scope)
        check = scope["check"]
        program = compile(solution, "solution.py", "exec")
    except BaseException as err:
        fail(err)
    plain_types = (type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)

    def plain(value):
        stack, seen = [value], set()
        while stack:
            item = stack.pop()
            kind = type(item)
            if not any(kind is t for t in plain_types):
                raise TypeError(f"{entry_point}() returned a value of a class of its own; answers must be "
                                "plain data (None, bool, int, float, str, bytes, list, tuple, dict, set)")
            if kind is list or kind is tuple or kind is set or kind is frozenset or kind is dict:
                if id(item) in seen:
                    continue
                seen.add(id(item))
                if kind is dict:
                    stack.extend(dict.keys(item))
                    stack.extend(dict.values(item))
                else:
                    stack.extend(item)

    # the untrusted side: the solution in a namespace of its own
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(program, namespace)
        function = namespace.get(entry_point)
        if function is None:
            raise NameError(f"the solution defines no {entry_point}()")

        def candidate(*args, **kwargs):
            value = function(*args, **kwargs)
            plain(value)
            return value

        scope[entry_point] = candidate  # as in HumanEval's own harness, a test may call it by name
        check(candidate)
    except BaseException as err:
        fail(err)
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    if getpid() != pid:  # a forked copy that guessed right is not the run
        exit_(1)
    write(result_fd, nonce)  # reached only when check() returned
    exit_(0)


_main()
'''
_BOOTSTRAP = (
    "import builtins\n"
    f"exec(compile({_BODY!r}, '<sandbox>', 'exec'), "
    "{'__builtins__': dict(vars(builtins)), '__name__': '__sandbox__'})\n"
)


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
        """For ``run_tests``: the tests ran to completion and passed; for ``run_python``: exit status 0."""
        return self.status == "ok"

    def reason(self) -> str:
        """One line saying why a run failed (the last line of its traceback for an error)."""
        if self.status == "incomplete":
            return "the program ended before its tests finished (no pass was reported)"
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
    """Run ``code`` as a script in a fresh sandbox and report how it ended. ``ok`` means exit status
    0, which any script can fake: a verifier uses ``run_tests``."""
    return _run({"mode": "script", "code": code}, limits or SandboxLimits(), nonce=None)


def run_tests(
    solution: str, tests: str, entry_point: str, limits: SandboxLimits | None = None, context: str = ""
) -> SandboxResult:
    """Run ``check(candidate)`` from ``tests`` against ``entry_point`` defined by ``solution``.

    ``context`` is trusted code run in the tests' namespace first (a HumanEval prompt, whose helpers
    some tests call). The result is ``ok`` only when the harness reported, after ``check`` returned,
    the nonce of this run (see the module docstring)."""
    nonce = secrets.token_hex(16)
    payload = {
        "mode": "tests",
        "solution": solution,
        "tests": tests,
        "entry_point": entry_point,
        "context": context,
        "nonce": nonce,
    }
    return _run(payload, limits or SandboxLimits(), nonce=nonce)


def _run(payload: dict[str, Any], limits: SandboxLimits, nonce: str | None) -> SandboxResult:
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
    if nonce is not None:  # tests: no forked copies trying several answers at once
        also_blocked = ["os.fork", "os.forkpty"]
    root = Path(tempfile.mkdtemp(prefix="teachloop-sandbox-"))
    box, out = root / "box", root / "out"
    box.mkdir()
    out.mkdir(mode=0o700)
    result_fd: int | None = None
    try:
        if nonce is not None:  # the harness's channel: a file the solution cannot open by name
            result_fd = os.open(out / "result", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        cfg = json.dumps(
            {
                "limits": kernel_limits,
                "also_blocked": also_blocked,
                "blocked_prefixes": blocked_prefixes,
                "result_fd": result_fd,
            }
        )
        if isolation == "namespace":
            os.chmod(root, 0o711)
            os.chown(box, uid, uid)
            command = [*_namespace_prefix(uid), str(python), "-I", "-B", "-c", _BOOTSTRAP, cfg]
        else:
            command = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, cfg]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(box)}
        start = time.perf_counter()
        # the payload goes through an anonymous file on stdin: no name on disk, and the child
        # closes it before the untrusted code runs
        with (
            tempfile.TemporaryFile() as source,
            (out / "stdout").open("wb") as fo,
            (out / "stderr").open("wb") as fe,
        ):
            source.write(json.dumps(payload).encode("utf-8"))
            source.seek(0)
            proc = subprocess.Popen(
                command,
                cwd=box,
                stdin=source,
                stdout=fo,
                stderr=fe,
                env=env,
                start_new_session=True,
                pass_fds=() if result_fd is None else (result_fd,),
            )
            source.close()
            if result_fd is not None:
                os.close(result_fd)
                result_fd = None
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
        status = _status(proc.returncode, timed_out, stderr)
        if nonce is not None and status == "ok":
            with (out / "result").open("rb") as f:
                reported = f.read(_RESULT_BYTES)
            status = "ok" if secrets.compare_digest(reported, nonce.encode()) else "incomplete"
        return SandboxResult(
            status=status,
            exit_code=None if timed_out else proc.returncode,
            stdout=stdout,
            stderr=stderr,
            seconds=round(seconds, 3),
            isolation=isolation,
        )
    finally:
        if result_fd is not None:
            os.close(result_fd)
        shutil.rmtree(root, ignore_errors=True)
