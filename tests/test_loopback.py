"""Nothing listens on a non-loopback address by default.

teachloop itself opens no listening socket: it is a client of the teacher's server and of an
OTLP collector, and the sandbox refuses sockets to generated code (test_sandbox.py). The servers
that do exist — the fake OpenAI server and OTLP collector of the tests, the real
``transformers serve`` of test_llm_serve.py — bind 127.0.0.1, and every server command the docs
tell a user to run says ``--host 127.0.0.1`` (``vllm serve`` binds 0.0.0.0 unless told).
These tests read the source, so a new server anywhere in the tree is checked without running it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: Calls that make a socket listen, and server classes that do so when constructed.
LISTENING_CALLS = {"bind", "listen", "serve_forever", "create_server", "start_server", "run_simple"}
SERVER_CLASSES = {"HTTPServer", "ThreadingHTTPServer", "TCPServer", "ThreadingTCPServer", "_Server", "Server"}
SERVE_COMMAND = re.compile(r"\b(vllm serve|transformers serve|ollama serve|uvicorn)\b")


def _sources(under: Path) -> list[Path]:
    return [p for p in under.rglob("*.py") if ".venv" not in p.parts and "egg-info" not in str(p)]


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _address_host(call: ast.Call) -> str | None:
    """The host of a ``bind((host, port))`` or ``Server((host, port), ...)`` call, if written literally."""
    if call.args and isinstance(call.args[0], ast.Tuple) and call.args[0].elts:
        host = call.args[0].elts[0]
        if isinstance(host, ast.Constant) and isinstance(host.value, str):
            return host.value
    return None


def _listeners(path: Path) -> list[tuple[int, str, str | None]]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        (node.lineno, _name(node), _address_host(node))
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and (_name(node) in LISTENING_CALLS or _name(node) in SERVER_CLASSES)
    ]


def test_the_package_opens_no_listening_socket() -> None:
    package = [p for p in _sources(ROOT) if "tests" not in p.relative_to(ROOT).parts]
    assert any(p.name == "runner.py" for p in package)
    found = {f"{p.relative_to(ROOT)}:{line} {name}" for p in package for line, name, _ in _listeners(p)}
    assert not found, f"a listening socket outside the tests: {sorted(found)}"


def test_the_test_servers_bind_loopback_only() -> None:
    binds = [
        (f"{p.name}:{line}", host)
        for p in _sources(ROOT / "tests")
        for line, name, host in _listeners(p)
        if name == "bind" or name in SERVER_CLASSES
    ]
    assert len(binds) >= 4, binds  # fake OpenAI, OTLP collector, free-port probes, the sandbox's target
    assert all(host in LOOPBACK for _, host in binds), binds
    for path in _sources(ROOT / "tests"):
        text = path.read_text()
        for match in re.finditer(r'"--host",\s*"([^"]+)"', text):
            assert match.group(1) in LOOPBACK, f"{path.name}: --host {match.group(1)}"


def test_documented_server_commands_bind_loopback() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    commands = [
        (doc.name, line.strip())
        for doc in docs
        for line in doc.read_text().splitlines()
        if SERVE_COMMAND.search(line) and not line.lstrip().startswith(("|", "-", "*")) and "`" not in line
    ]
    assert commands, "the docs show no server command to check"
    for doc, line in commands:
        host = re.search(r"--host[ =](\S+)", line)
        assert host and host.group(1) in LOOPBACK, f"{doc}: {line}"
