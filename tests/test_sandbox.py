"""Hostile code in the sandbox is contained: each case runs under both isolations (``auto`` is
namespaces plus a separate user id where permitted, as when running as root; ``audit-hook`` is the
fallback everywhere else)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

import pytest

from teachloop.environments.sandbox import _UID_BASE, SandboxLimits, run_python, run_tests

ISOLATIONS = ["auto", "audit-hook"]
FAST = {"cpu_seconds": 1, "wall_seconds": 4.0, "memory_mb": 256}


def _run(code: str, isolation: str, **limits: object):  # type: ignore[no-untyped-def]
    return run_python(code, SandboxLimits(**{**FAST, **limits, "isolation": isolation}))  # type: ignore[arg-type]


def _tests(solution: str, isolation: str):  # type: ignore[no-untyped-def]
    limits = SandboxLimits(**{**FAST, "isolation": isolation})  # type: ignore[arg-type]
    return run_tests(solution, DOUBLE_TESTS, "double", limits)


DOUBLE_TESTS = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6\n"


def _sandbox_processes() -> list[int]:
    uid = _UID_BASE + os.getpid() % 1_000_000
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uids.split()[1]) == uid:
            found.append(int(status.parent.name))
    return found


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="namespaces need root")
def test_auto_uses_namespaces_when_running_as_root() -> None:
    assert run_python("pass").isolation == "namespace"


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_clean_run_sees_only_its_own_directory_and_no_secrets(isolation: str) -> None:
    os.environ["TEACHLOOP_TEST_SECRET"] = "sk-do-not-leak"
    try:
        result = _run(
            "import os\nopen('note.txt', 'w').write('kept')\nprint(open('note.txt').read(), sorted(os.environ))",
            isolation,
        )
    finally:
        del os.environ["TEACHLOOP_TEST_SECRET"]
    assert result.ok, result.stderr
    assert result.stdout.startswith("kept") and "TEACHLOOP_TEST_SECRET" not in result.stdout
    assert result.isolation == ("audit-hook" if isolation == "audit-hook" else result.isolation)
    assert not list(Path(tempfile.gettempdir()).glob("teachloop-sandbox-*"))


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_an_infinite_loop_is_stopped_by_the_cpu_limit(isolation: str) -> None:
    start = time.perf_counter()
    result = _run("while True:\n    pass", isolation)
    assert result.status == "cpu_limit" and time.perf_counter() - start < 3.5


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_sleeper_is_stopped_by_the_wall_limit(isolation: str) -> None:
    start = time.perf_counter()
    result = _run("import time\ntime.sleep(60)", isolation, wall_seconds=1.0)
    assert result.status == "timeout" and time.perf_counter() - start < 3


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize(
    "bomb",
    [
        "import os\nwhile True:\n    os.fork()",
        # children that swallow errors, leave the process group and keep forking
        "import os\nwhile True:\n    try:\n        if os.fork() == 0:\n            os.setsid()\n    except OSError:\n        pass",
    ],
)
def test_a_fork_bomb_is_contained_and_leaves_no_process(isolation: str, bomb: str) -> None:
    start = time.perf_counter()
    result = _run(bomb, isolation, wall_seconds=3.0)
    assert not result.ok and time.perf_counter() - start < 6
    deadline = time.monotonic() + 5  # the kernel tears the namespace down asynchronously
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sandbox_processes() == []
    if result.isolation == "audit-hook" and "except" not in bomb:
        assert "os.fork is not allowed" in result.stderr


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("code", ["x = bytearray(8 * 2**30)", "x = [0] * 2**31", "x = 'a' * 2**33"])
def test_a_huge_allocation_hits_the_memory_limit(isolation: str, code: str) -> None:
    result = _run(code, isolation)
    assert result.status == "memory_limit", result.stderr


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize(
    "attack",
    [
        "open({target!r}, 'w').write('escaped')",
        "import os\nfd = os.open({target!r}, os.O_WRONLY | os.O_CREAT)\nos.write(fd, b'escaped')",
        "import os\nos.symlink({target!r}, 'link')\nopen('link', 'w').write('escaped')",
        "import os\nopen('here', 'w').write('escaped')\nos.rename('here', {target!r})",
        "import shutil\nopen('here', 'w').write('escaped')\nshutil.copyfile('here', {target!r})",
        "import os\nos.system('echo escaped > {target}')",
        "import subprocess\nsubprocess.run(['sh', '-c', 'echo escaped > {target}'])",
        "import ctypes\nctypes.CDLL(None).system(b'echo escaped > {target}')",
    ],
)
@pytest.mark.parametrize("where", ["tmp", "test_dir"])
def test_writing_outside_its_directory_is_refused(
    isolation: str, attack: str, where: str, tmp_path: Path
) -> None:
    # /tmp is writable by everyone; the test's own directory belongs to this user
    target = Path(tempfile.gettempdir()) / f"escape-{os.getpid()}" if where == "tmp" else tmp_path / "escape"
    target.unlink(missing_ok=True)
    result = _run(attack.format(target=str(target)), isolation)
    assert not result.ok
    assert not target.exists(), result.stderr
    target.unlink(missing_ok=True)


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_deleting_outside_its_directory_is_refused(isolation: str, tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("mine")
    os.chmod(tmp_path, 0o777)
    result = _run(f"import os\nos.remove({str(victim)!r})", isolation)
    assert not result.ok and victim.read_text() == "mine"


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize(
    "attack",
    [
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'leak')",
        "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)",
        "import socket\nsocket.getaddrinfo('pypi.org', 443)",
    ],
)
def test_sockets_reach_nothing(isolation: str, attack: str) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.3)
        port = server.getsockname()[1]
        result = _run(attack.format(port=port), isolation)
        with pytest.raises(TimeoutError):
            server.accept()
    assert not result.ok
    if result.isolation == "audit-hook":
        assert "socket" in result.stderr and "not allowed" in result.stderr
    else:
        assert "unreachable" in result.stderr or "resolution" in result.stderr or "refused" in result.stderr


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_output_is_capped_and_huge_files_hit_the_file_limit(isolation: str) -> None:
    chatty = _run("print('x' * 10**6)", isolation, output_chars=100)
    assert chatty.ok and len(chatty.stdout) == 100
    flood = _run("while True:\n    print('y' * 10**5)", isolation, file_mb=1)
    assert flood.status == "file_limit" and len(flood.stdout) <= 4000
    disk = _run("open('big', 'w').write('z' * 8 * 2**20)", isolation, file_mb=1)
    assert disk.status == "file_limit"


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_the_code_cannot_signal_other_processes_or_lift_its_limits(isolation: str) -> None:
    killed = _run(f"import os, signal\nos.kill({os.getpid()}, signal.SIGTERM)", isolation)
    assert not killed.ok and "os.kill is not allowed" in killed.stderr
    lifted = _run("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (100, 100))", isolation)
    assert not lifted.ok and "setrlimit is not allowed" in lifted.stderr


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize(
    ("solution", "status"),
    [
        ("def double(x):\n    return 2 * x\n", "ok"),
        ("def double(x):\n    return x\n", "error"),
        # an exit status of 0 is not a pass: only the harness, after check() returned, reports one
        ("def double(x):\n    import os\n    os._exit(0)\n", "incomplete"),
        ("import os\nos._exit(0)\n", "incomplete"),
        ("def double(x):\n    raise SystemExit(0)\n", "error"),
        ("import sys\nsys.exit(0)\n", "error"),
        ("def double(x):\n    print('all tests passed')\n    return 0\n", "error"),
        ("def check(candidate):\n    pass\n\ndef double(x):\n    return 0\n", "error"),
        ("def double(x):\n    import os\n    os.fork()\n    return 2 * x\n", "error"),
    ],
)
def test_run_tests_passes_only_when_check_returned(isolation: str, solution: str, status: str) -> None:
    assert _tests(solution, isolation).status == status


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_the_solution_cannot_find_the_tests_or_the_nonce(isolation: str) -> None:
    """Doubles correctly only if it can see the tests' source or a nonce (32 hex digits) anywhere."""
    probe = """
import os, re, sys

def seen():
    texts = [" ".join(sys.orig_argv), repr(sys.modules["__main__"].__dict__)]
    for name in os.listdir("."):
        texts.append(open(name, errors="replace").read())
    for path in ("/dev/stdin", "/proc/self/cmdline", "/proc/self/environ", "/dev/fd/0"):
        try:
            texts.append(open(path, errors="replace").read())
        except OSError:
            pass
    for fd in range(64):
        try:
            texts.append(os.read(fd, 1 << 16).decode(errors="replace"))
        except OSError:
            pass
    return any("candidate(-3)" in t or re.search("[0-9a-f]{32}", t) for t in texts)

def double(x):
    return 2 * x if seen() else 0
"""
    result = _tests(probe, isolation)
    assert result.status == "error" and "AssertionError" in result.reason(), result.stderr
