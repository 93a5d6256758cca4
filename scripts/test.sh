#!/usr/bin/env bash
# Set everything up from the project's own files, then lint and run the whole test suite.
# This is what CI runs on a fresh machine, so it also installs the Debian tools the tests use
# (scripts/setup.sh --system-deps: apt-get, as root; skipped with a note otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --system-deps
.venv/bin/ruff check src tests benchmarks
.venv/bin/python -m pytest -q --doctest-modules src tests "$@"
