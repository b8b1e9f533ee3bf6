#!/usr/bin/env bash
# Build the JupyterLab sidebar extension (extensions/jupyterlab-spaces) into
# jupyterhub_spaces/labextension/ and make JupyterLab find it.
#
# The npm dependencies and the TypeScript build live in a cache outside the
# checkout, so a fresh clone never sees node_modules and a second run with
# unchanged sources does nothing.  Usage: 70-labextension.sh [demo|test|--sources-hash]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/extensions/jupyterlab-spaces"
OUT="$ROOT/jupyterhub_spaces/labextension"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/jupyterhub-spaces/labextension"
WORK="$CACHE/tree/extensions/jupyterlab-spaces"
NAME="@jupyterhub-spaces/jupyterlab-spaces"

# Everything the build reads: a change to any of it rebuilds (the lock file too,
# which the build itself may update: the hash is taken again after the build).
sources_hash() {
    (cd "$SRC" && { find package.json install.json tsconfig.json tsconfig.test.json .yarnrc.yml yarn.lock \
        src style test -type f -print0 2>/dev/null || true; } \
        | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}
if [ "${1:-}" = "--sources-hash" ]; then
    sources_hash
    exit 0
fi

# The Python environment that runs the hub and the sessions; its bin holds
# jlpm and jupyter-builder (both come with jupyterlab).
PY="${PYTHON:-python3}"
BIN="$(dirname "$(command -v "$PY")")"
if [ -x "$BIN/jlpm" ]; then
    export PATH="$BIN:$PATH"
fi
if ! command -v jlpm >/dev/null; then
    echo "70-labextension: jlpm not found; install the 'lab' extra (pip install -e '.[lab]') first" >&2
    exit 1
fi

HASH="$(sources_hash)"
if [ -f "$OUT/package.json" ] && [ "$(cat "$OUT/.sources-hash" 2>/dev/null)" = "$HASH" ]; then
    echo "70-labextension: up to date"
else
    echo "70-labextension: building $NAME (dependencies cached in $CACHE)"
    mkdir -p "$WORK"
    # Copy the sources, keep the cached node_modules and yarn state.
    rm -rf "$WORK/src" "$WORK/style" "$WORK/test"
    cp -r "$SRC/src" "$SRC/style" "$SRC/test" "$SRC/package.json" "$SRC/.yarnrc.yml" \
        "$SRC"/tsconfig*.json "$WORK/"
    [ -f "$SRC/yarn.lock" ] && cp "$SRC/yarn.lock" "$WORK/"
    cd "$WORK"
    touch yarn.lock
    nice jlpm install
    rm -rf lib tsconfig.tsbuildinfo ../../jupyterhub_spaces/labextension
    nice jlpm build:lib
    # the pure logic's own tests: a broken sidebar never gets installed
    nice jlpm test
    # Build against the core packages of the JupyterLab installed here, so the
    # extension shares exactly the singletons (application, widgets) it runs with.
    CORE="$("$PY" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging", "package.json"))')"
    nice jupyter-builder build --core-package-file="$CORE" .
    # Keep the lock file the build used next to the sources, so builds repeat.
    cp yarn.lock "$SRC/yarn.lock"
    rm -rf "$OUT"
    cp -r "$CACHE/tree/jupyterhub_spaces/labextension" "$OUT"
    cp "$SRC/install.json" "$OUT/install.json"
    sources_hash > "$OUT/.sources-hash"
fi

# JupyterLab discovers prebuilt extensions in <prefix>/share/jupyter/labextensions;
# a wheel installs them there (pyproject data-files); an editable checkout gets a link.
PREFIX="$("$PY" -c 'import sys; print(sys.prefix)')"
DEST="$PREFIX/share/jupyter/labextensions/$NAME"
if [ ! -e "$DEST" ] || [ -L "$DEST" ]; then
    mkdir -p "$(dirname "$DEST")"
    ln -sfn "$OUT" "$DEST"
fi
echo "70-labextension: $NAME available at $DEST"
