#!/usr/bin/env bash
# Set everything up from the project's own files, then lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest -q --doctest-modules src tests "$@"
