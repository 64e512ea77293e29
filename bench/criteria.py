"""How far do mined criteria agree with people, against a plain "which is better" prompt?

    python bench/criteria.py --out runs/bench-criteria                       # serves the cached SmolLM2
    python bench/criteria.py --base-url http://127.0.0.1:8000/v1 --model NAME --out runs/bench-big

Mines criteria (``teachloop criteria mine``) from the shipped example pairs of the default
environment (environments/data/reasoning_basics_pairs.jsonl, 36 pairs; 30% held out), then
prints each surviving criterion's accuracy on the mining pairs and on the held-out pairs, the
combined criteria's held-out agreement and the plain prompt's on the same judge, how many
judge replies were unusable, and the wall time. Without --base-url it starts ``transformers
serve`` on loopback with the offline default student as the judge (a 135M model: expect chance).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

from teachloop.criteria.pairs import EXAMPLE_PAIRS
from teachloop.tracing.spans import read_spans
from teachloop.training.student import resolve_student


def serve(model: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    home = Path(tempfile.mkdtemp(prefix="hf-"))
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "transformers"),
            "serve",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return server, f"http://127.0.0.1:{port}/v1"
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            sys.exit(f"transformers serve did not start; see {log}")
        time.sleep(1)


def table(report: dict, spans_db: Path, wall: float, judge: str) -> str:
    parsed = Counter(
        json.loads(s.attrs or "{}").get("parsed")
        for s in read_spans(spans_db)
        if s.kind == "llm" and not s.name.endswith("repair")
    )
    usable = parsed[True] / max(1, sum(parsed.values()))
    pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
    lines = [
        f"Judge: {judge}. Mined on {report['mining_pairs']} pairs, reported on {report['held_out_pairs']} "
        f"held-out pairs; {sum(parsed.values())} structured requests, {pct(usable)} parsed before repair; "
        f"{wall / 60:.1f} min.",
        "",
        "| criterion | origin | status | mining accuracy | held-out accuracy |",
        "|---|---|---|---|---|",
    ]
    for c in report["criteria"]:
        lines.append(
            f"| {c['criterion']['name']} | {c['criterion']['origin']} | {c['status']} | {pct(c['accuracy'])} "
            f"| {pct(c['held_out_accuracy'])} |"
        )
    for d in report["dropped"]:
        lines.append(
            f"| {d['criterion']['name']} | {d['criterion']['origin']} | dropped | {pct(d['accuracy'])} | - |"
        )
    lines += [
        "",
        f"Held-out agreement with the people: combined criteria {pct(report['combined_held_out'])}, "
        f"plain 'which is better' prompt {pct(report['plain_held_out'])}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--base-url", help="an OpenAI-compatible judge endpoint (default: serve SmolLM2 here)"
    )
    parser.add_argument("--model", help="the judge model name (default: the cached SmolLM2 directory)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-criteria"))
    parser.add_argument("--port", type=int, default=8765, help="loopback port of the served judge")
    parser.add_argument("--proposals", type=int, default=6)
    parser.add_argument("--votes", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    model = args.model or str(resolve_student("smollm2-135m-instruct", None))
    server = None
    if args.base_url is None:
        args.out.mkdir(parents=True, exist_ok=True)
        server, args.base_url = serve(
            Path(model), args.port, args.out.with_name(args.out.name + "-serve.log")
        )
    start = time.perf_counter()
    try:
        subprocess.run(
            [
                sys.executable, "-m", "teachloop", "criteria", "mine", "--pairs", str(EXAMPLE_PAIRS),
                "--out", str(args.out), "--teacher-base-url", args.base_url, "--teacher-model", model,
                "--set", f"teacher.criteria.votes={args.votes}", "--set", f"teacher.criteria.proposals={args.proposals}", "--set", f"teacher.criteria.iterations={args.iterations}",
                "--set", f"teacher.llm.max_tokens={args.max_tokens}", "--set", "teacher.llm.timeout_s=300",
                "--set", "teacher.llm.concurrency=4",
            ],
            check=True,
        )  # fmt: skip
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    wall = time.perf_counter() - start
    report = json.loads((args.out / "criteria.json").read_text())
    print(table(report, args.out / "traces.sqlite", wall, Path(model).name))


if __name__ == "__main__":
    main()
