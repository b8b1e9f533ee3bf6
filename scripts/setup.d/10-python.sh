#!/usr/bin/env bash
# The checkout's virtualenv (.venv) with jupyterhub-spaces installed editable:
# extras [test] for the tests, [postgres,lab] for the demo.
#
#   scripts/setup.d/10-python.sh demo|test
#
# Environment: SPACES_PYTHON  the interpreter that creates .venv (default python3,
# must be >= 3.10). Idempotent: a stamp holding the hash of pyproject.toml and the
# extras skips pip when nothing changed.
set -euo pipefail

mode="${1:-test}"
root="${SPACES_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
venv="${VENV:-$root/.venv}"
base_python="${SPACES_PYTHON:-python3}"
. "$root/scripts/lib/apt.sh"

case "$mode" in
    test) extras="test" ;;
    demo) extras="postgres,lab" ;;
    *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

if [[ ! -x "$venv/bin/python" ]]; then
    if ! command -v "$base_python" >/dev/null; then
        echo "python: $base_python not found; install Python >= 3.10 (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
        exit 1
    fi
    if ! "$base_python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "python: $("$base_python" --version 2>&1) is too old; jupyterhub-spaces needs >= 3.10 (set SPACES_PYTHON)" >&2
        exit 1
    fi
    # Debian and Ubuntu split venv (ensurepip) out of the interpreter
    if ! "$base_python" -c 'import ensurepip, venv' 2>/dev/null; then
        ver="$("$base_python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        echo "python: installing python$ver-venv"
        apt_install "python$ver-venv" || apt_install python3-venv
    fi
    echo "python: creating $venv"
    "$base_python" -m venv "$venv"
fi

stamp="$venv/.jupyterhub-spaces-$mode"
wanted="$extras $(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]] \
    && "$venv/bin/python" -c 'import jupyterhub_spaces' 2>/dev/null; then
    echo "python: $venv up to date ($extras)"
    exit 0
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
# editable installs of a pyproject.toml project need a recent pip
"$venv/bin/python" -m pip install -q --upgrade "pip>=23.1"
echo "python: installing jupyterhub-spaces[$extras] into $venv"
(cd "$root" && "$venv/bin/python" -m pip install -q -e ".[$extras]")
echo "$wanted" > "$stamp"
