#!/usr/bin/env bash
# Set everything up, then run the demo (synthetic corpus → train → evaluate → table).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/emotrace demo "$@"
