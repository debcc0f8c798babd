#!/usr/bin/env bash
# Run the test suite. Fails on purpose if pytest collects nothing (exit 5), so an empty run is never green.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${PRG_VENV:-.venv}
"$VENV/bin/python" -m pytest -q "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit $rc
