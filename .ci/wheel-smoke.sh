#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it in a clean virtual environment and
# run it from an empty folder, first without extras (loading needs none; the sandbox commands
# say which extra to install), then with the `sandbox` extra (demo, sandbox + run, dlt's CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d -t wallet-elt-smoke-XXXXXX)
SANDBOX_PID=""
cleanup() {
    if [[ -n "$SANDBOX_PID" ]]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "wheel-smoke: $*" >&2; exit 1; }

# From a copy of the tree: setuptools' build/ folder in the checkout may hold stale modules.
python3 - "$ROOT" "$WORK/src" <<'EOF'
import shutil, sys
shutil.copytree(sys.argv[1], sys.argv[2], symlinks=True, ignore=shutil.ignore_patterns(
    ".git", ".venv*", "build", "__pycache__", "*.duckdb*", "*.egg-info"))
EOF
python3 -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/wallet_elt-*.whl)
echo "wheel-smoke: built $(basename "$WHEEL")"

python3 -m venv "$WORK/venv"
VENV="$WORK/venv/bin"
"$VENV/pip" install --quiet "$WHEEL"

# A user's empty folder: no .dlt/, no repository on the path, no wallet settings.
RUN="$WORK/run"
mkdir "$RUN"
cd "$RUN"
unset PYTHONPATH SOURCES__WALLET__BASE_URL SOURCES__WALLET__API_KEY WALLET_API_KEY
export DLT_DATA_DIR="$WORK/dlt" RUNTIME__DLTHUB_TELEMETRY=false PATH="$VENV:$PATH"

for name in sources pipelines sandbox numpy; do
    if python -c "import $name" 2>/dev/null; then
        fail "the base install provides '$name' (only wallet_elt, and numpy only with [sandbox])"
    fi
done
routes=$(python -c "from wallet_elt.sources.wallet.catalog import ENTRIES; print(len(ENTRIES))")
[[ $(wallet-elt resources | wc -l) -ge $routes ]] || fail "wallet-elt resources lists fewer than the catalog's $routes routes"
if wallet-elt demo >out.txt 2>err.txt; then fail "demo ran without the sandbox extra"; fi
grep -q "pip install 'wallet-elt\[sandbox\]'" err.txt || fail "demo without the extra: $(cat err.txt)"
[[ $(wc -l <err.txt) -eq 1 ]] || fail "demo without the extra printed more than one line"
echo "wheel-smoke: base install loads nothing it does not need; demo names the extra"

"$VENV/pip" install --quiet "$WHEEL[sandbox]"
wallet-elt demo --scale 500 >out.txt || fail "demo: $(cat out.txt)"
grep -q "^Loaded into .*wallet_demo.duckdb" out.txt || fail "demo loaded nothing: $(cat out.txt)"
echo "wheel-smoke: demo loaded $(grep -m1 'rows in' out.txt)"

PORT=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
wallet-elt sandbox --port "$PORT" --scale 500 >sandbox.txt 2>&1 &
SANDBOX_PID=$!
for _ in $(seq 120); do
    if python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/_sandbox/stats')" 2>/dev/null; then
        break
    fi
    kill -0 "$SANDBOX_PID" 2>/dev/null || fail "sandbox exited: $(cat sandbox.txt)"
    sleep 0.5
done
KEY=$(sed -n 's/^access-token: //p' sandbox.txt)
SOURCES__WALLET__BASE_URL="http://127.0.0.1:$PORT" WALLET_API_KEY="$KEY" wallet-elt run >out.txt \
    || fail "run against the sandbox: $(cat out.txt)"
grep -q "^members: [1-9][0-9]* rows" out.txt || fail "run loaded no members: $(cat out.txt)"
[[ -f wallet.duckdb ]] || fail "run wrote no ./wallet.duckdb"
dlt pipeline wallet info >out.txt || fail "dlt pipeline wallet info: $(cat out.txt)"
grep -q "members" out.txt || fail "dlt pipeline wallet info does not show the tables"
echo "wheel-smoke: sandbox --port $PORT, run and dlt pipeline wallet info work from $RUN"
