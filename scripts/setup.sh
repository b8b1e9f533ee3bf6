#!/usr/bin/env bash
# Prepare this checkout for the embedded demo or for the tests:
#
#   scripts/setup.sh demo|test
#
# Runs every scripts/setup.d/NN-name.sh in order with $1 = demo or test. Each step is
# idempotent and returns quickly when its work is already done, so this runs before
# every `make demo` / `make test`. The steps share:
#
#   SPACES_ROOT   the checkout
#   SPACES_MODE   demo or test
#   VENV, PYTHON  the checkout's virtualenv (.venv) and its python; PATH starts with it
#
# SPACES_SETUP_SKIP="50-superset 60-kube-apiserver" skips the named steps.
set -euo pipefail

mode="${1:-}"
if [[ "$mode" != demo && "$mode" != test ]]; then
    echo "usage: $0 demo|test" >&2
    exit 2
fi

SPACES_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPACES_MODE="$mode"
VENV="${VENV:-$SPACES_ROOT/.venv}"
PYTHON="$VENV/bin/python"
PATH="$VENV/bin:$PATH"
export SPACES_ROOT SPACES_MODE VENV PYTHON PATH

skip=" ${SPACES_SETUP_SKIP:-} "
total_start=$SECONDS
for step in "$SPACES_ROOT"/scripts/setup.d/[0-9][0-9]-*.sh; do
    name="$(basename "$step" .sh)"
    if [[ "$skip" == *" $name "* ]]; then
        echo "==> $name: skipped (SPACES_SETUP_SKIP)"
        continue
    fi
    echo "==> $name"
    start=$SECONDS
    if ! bash "$step" "$mode"; then
        echo "setup step $name failed (scripts/setup.d/$name.sh); fix the problem it names and run again" >&2
        exit 1
    fi
    echo "    $name done in $((SECONDS - start)) s"
done
echo "==> setup for $mode finished in $((SECONDS - total_start)) s"
