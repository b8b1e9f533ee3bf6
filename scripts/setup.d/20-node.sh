#!/usr/bin/env bash
# configurable-http-proxy (the JupyterHub proxy) from npm into node_modules/.
# Needs Node >= 20 and npm; on Debian/Ubuntu without them, installs the distribution's
# nodejs and npm packages when those are new enough.
#
#   scripts/setup.d/20-node.sh demo|test
#
# Idempotent: skipped when node_modules matches package-lock.json.
set -euo pipefail

root="${SPACES_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$root/scripts/lib/apt.sh"

node_major() { node -e 'console.log(process.versions.node.split(".")[0])' 2>/dev/null || echo 0; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node: installing nodejs and npm"
    apt_install nodejs npm
fi
if (( $(node_major) < 20 )); then
    echo "node: $(node --version) is too old; configurable-http-proxy needs Node >= 20." >&2
    echo "      Install it from https://nodejs.org/ or NodeSource, then run again." >&2
    exit 1
fi

cd "$root"
stamp="node_modules/.jupyterhub-spaces-lock"
wanted="$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [[ -x node_modules/.bin/configurable-http-proxy && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    echo "node: configurable-http-proxy up to date"
    exit 0
fi
echo "node: npm ci (configurable-http-proxy)"
npm ci --no-audit --no-fund --loglevel=error
echo "$wanted" > "$stamp"
node_modules/.bin/configurable-http-proxy --version
