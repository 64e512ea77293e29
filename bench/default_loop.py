"""Measure the README's default loop: wall time and test accuracy by round, for a few seeds.

    python bench/default_loop.py --seeds 0 1 2 --out runs/bench-default

Runs ``teachloop run --seed S`` (the default config otherwise) for each seed, then prints a
Markdown table and checks the default run's promises: three rounds within 10 minutes, test
accuracy after the last round at least 40 points above round 0, and no round below the 95%
interval of the round before it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def run_seed(seed: int, out: Path) -> dict:
    run_dir = out / f"seed{seed}"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "teachloop", "run", "--seed", str(seed), "--run-dir", str(run_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"seed": seed, "wall_seconds": wall, "rounds": [r["test"] for r in summary["rounds"]]}


def check(result: dict) -> list[str]:
    problems = []
    tests = result["rounds"]
    if result["wall_seconds"] > 600:
        problems.append(f"took {result['wall_seconds']:.0f}s > 600s")
    gain = tests[-1]["accuracy"] - tests[0]["accuracy"]
    if gain < 0.40:
        problems.append(f"gain {gain:+.1%} < +40 points")
    for k in range(1, len(tests)):
        if tests[k]["accuracy"] < tests[k - 1]["ci95"][0]:
            problems.append(f"round {k} fell below round {k - 1}'s interval")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-default"))
    args = parser.parse_args()
    results = [run_seed(s, args.out) for s in args.seeds]
    rounds = len(results[0]["rounds"])
    print("| seed | wall | " + " | ".join(f"round {k}" for k in range(rounds)) + " | gain | checks |")
    print("|---" * (rounds + 4) + "|")
    for r in results:
        cells = [
            f"{100 * t['accuracy']:.1f}% [{100 * t['ci95'][0]:.0f}-{100 * t['ci95'][1]:.0f}]"
            for t in r["rounds"]
        ]
        gain = r["rounds"][-1]["accuracy"] - r["rounds"][0]["accuracy"]
        verdict = "; ".join(check(r)) or "pass"
        print(
            f"| {r['seed']} | {r['wall_seconds'] / 60:.1f} min | "
            + " | ".join(cells)
            + f" | {100 * gain:+.1f} | {verdict} |"
        )
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
