#!/usr/bin/env bash
# Prepares the BigQuery emulator (bqemulator) in a virtual environment of its own: it pins
# sqlglot below what dlt needs, so it cannot share the project's environment.
# Idempotent: when the venv already holds the pinned version it returns at once (~0.1 s).
# The venv lives under build/ (git-ignored). tests/bigquery_emulator.py finds it there, or at
# $WALLET_BQ_EMULATOR_VENV if set.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${WALLET_BQ_EMULATOR_VENV:-build/bq-venv}"
VERSION="1.4.0"
STAMP="$VENV/.wallet-bqemulator-$VERSION"

if [[ -f "$STAMP" && -x "$VENV/bin/python" ]]; then
    exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" ]]; then
    echo "BigQuery emulator: $VENV exists and is not a virtual environment; not touching it" >&2
    exit 1
fi
python3 -m venv --clear "$VENV"
LOG="$(mktemp)"
if ! "$VENV/bin/python" -m pip install --quiet "bqemulator==$VERSION" numpy >"$LOG" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$LOG" >&2 || true
    rm -f "$LOG"
    echo "BigQuery emulator: pip install into $VENV failed" >&2
    exit 1
fi
rm -f "$LOG"
# Smoke check: the module the test wrapper patches must be importable.
"$VENV/bin/python" -c "import bqemulator.storage.engine"
touch "$STAMP"
echo "BigQuery emulator $VERSION ready in $VENV"
