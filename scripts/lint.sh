#!/usr/bin/env bash
# Lint, format check and type check the package (what tests/test_quality.py runs).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
ruff format --check .
# The layers contract (pyproject.toml, [tool.importlinter]): imports only go downward.
lint-imports --no-cache
# mypy cannot follow the editable install's path hook (the repository root *is* the package), so
# it checks the package through a symlink named after the import name.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
ln -s "$(pwd)" "$root/teachloop"
(cd "$root" && mypy --config-file "$OLDPWD/pyproject.toml" -p teachloop)
