#!/usr/bin/env bash
# Install dinstyle and its test extras. Installs the CPU build of torch 2.13.0 first when no torch
# is present, so pip never pulls a multi-GB CUDA build for a CPU machine.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install -q "torch==2.13.0"
fi
"$PY" -m pip install -q -e ".[test]"
