#!/usr/bin/env bash
# Creates the virtual environment and installs the project into it.
#   scripts/install.sh [VENV] [EXTRAS]      e.g. scripts/install.sh .venv dev
# torch is installed first as a CPU build unless one is already there or TORCH_SPEC says otherwise,
# so a CPU-only machine never downloads the multi-GB CUDA build.
set -euo pipefail
venv="${1:-.venv}"
extras="${2:-}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip() { "$venv/bin/python" -m pip "$@"; }
pip install -q --upgrade pip setuptools wheel

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_SPEC:-}" ]; then
    pip install $TORCH_SPEC                                     # e.g. TORCH_SPEC="torch==2.9.1" for a CUDA build
  elif pip install -q "torch==2.13.0+cpu" 2>/dev/null || pip install -q "torch==2.13.0" --no-index 2>/dev/null; then
    :                                                           # a local CPU wheel (find-links) was used
  else
    pip install torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi

target="."
[ -n "$extras" ] && target=".[$extras]"
pip install -q -e "$target"
"$venv/bin/toolkit" --version
