"""Benchmark: the teacher client's concurrency against a server of fixed latency.

With a server that takes ``latency`` seconds per request and never fails, ``N`` requests at
concurrency ``C`` cannot finish faster than ``N * latency / C``; the client should come within
25% of that (the target: at most 1.25x). Requests go through the real client (openai SDK,
semaphore, tenacity, a trace span per request in SQLite) to a loopback server in a process of
its own (tests/fake_openai.py), with the response cache off so every request is sent.

    python bench/llm_concurrency.py --requests 256 --latency 1.0 --concurrency 4 16 64

Prints one JSON line per concurrency and exits 1 if any run misses the target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from teachloop.foundation.types import Message
from teachloop.llm.client import ChatRequest, Teacher, TeacherSession
from teachloop.llm.config import LLMConfig
from teachloop.tracing.spans import Tracer

TARGET = 1.25
SERVER = Path(__file__).resolve().parent.parent / "tests" / "fake_openai.py"


def measure(base_url: str, requests: int, latency: float, concurrency: int) -> dict[str, float | int | bool]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = LLMConfig(base_url=base_url, model="bench", concurrency=concurrency, cache=False)
        teacher = Teacher(settings, ["synthesizer"], Tracer(Path(tmp) / "traces.sqlite"), None)

        async def work(session: TeacherSession) -> None:
            calls = [
                session.chat(ChatRequest(role="synthesizer", messages=[Message(role="user", content=str(i))]))
                for i in range(requests)
            ]
            await asyncio.gather(*calls)

        start = time.perf_counter()
        teacher.run(work)
        seconds = time.perf_counter() - start
        ideal = requests * latency / concurrency
        return {
            "requests": requests,
            "latency_s": latency,
            "concurrency": concurrency,
            "seconds": round(seconds, 3),
            "ideal_s": round(ideal, 3),
            "ratio": round(seconds / ideal, 3),
            "meets_target": seconds <= TARGET * ideal,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=256, help="a multiple of every concurrency")
    parser.add_argument("--latency", type=float, default=1.0, help="server seconds per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16, 64])
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(args.latency)], stdout=subprocess.PIPE, text=True
    )
    try:
        base_url = (server.stdout.readline() if server.stdout else "").strip()
        ok = True
        for c in args.concurrency:
            row = measure(base_url, args.requests, args.latency, c)
            with urllib.request.urlopen(f"{base_url}/stats") as r:
                row["server_max_in_flight"] = json.load(r)["max_in_flight"]
            ok &= bool(row["meets_target"])
            print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        server.wait()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
