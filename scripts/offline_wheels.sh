#!/usr/bin/env bash
# Collect the wheels PRG-Synth generation needs on an offline machine that has only torch, numpy, pillow and
# opencv (a GPU training host). Run here, with internet; copy the folder there and run:
#   python3 -m pip install --no-index --no-deps --target /tmp/site WHEELDIR/*.whl
#   PYTHONPATH=/tmp/site:src python3 -m prg.cli.main data synth --out DIR --n N
# Usage: scripts/offline_wheels.sh [DIR=.whl] [PYTHON_VERSION=3.12]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.whl}
PYV=${2:-3.12}
PKGS=(pydantic pydantic-core annotated-types typing-inspection typing-extensions shapely tqdm
      fpdf2 fonttools defusedxml typer annotated-doc rich markdown-it-py mdurl pygments shellingham)
mkdir -p "$DIR"
# pydantic-core must match pydantic exactly: take the pair installed here.
PYD=$(python3 -c "import importlib.metadata as m; print(m.version('pydantic'))" 2>/dev/null || true)
PYDC=$(python3 -c "import importlib.metadata as m; print(m.version('pydantic-core'))" 2>/dev/null || true)
args=()
for p in "${PKGS[@]}"; do
  case $p in
    pydantic) [ -n "$PYD" ] && p="pydantic==$PYD" ;;
    pydantic-core) [ -n "$PYDC" ] && p="pydantic-core==$PYDC" ;;
  esac
  args+=("$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DIR" "${args[@]}" 2>&1 | grep -v "is ignored" || true
du -ch "$DIR"/*.whl | tail -1
