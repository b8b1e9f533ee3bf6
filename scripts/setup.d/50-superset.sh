#!/usr/bin/env bash
# Build the virtualenv that runs Apache Superset (and so SQL Lab) for the spaces'
# Superset tool. Superset pins SQLAlchemy < 2, so it cannot share an environment with
# jupyterhub-spaces: it lives outside the checkout in a cache directory and is reused
# by every checkout, test run and CI run on this machine.
#
#   scripts/setup.d/50-superset.sh [demo|test]
#
# Environment:
#   SPACES_SUPERSET_VENV   where the virtualenv lives
#                          (default ${XDG_CACHE_HOME:-$HOME/.cache}/jupyterhub-spaces/superset-venv)
#   SPACES_SUPERSET_PYTHON the Python used to create it (default python3; 3.10-3.12)
#   SPACES_SKIP_SUPERSET=1 skip this step (tools tests that need Superset then skip)
#
# Idempotent: when the virtualenv holds exactly these pins it returns at once.
set -euo pipefail

if [[ "${SPACES_SKIP_SUPERSET:-}" == "1" ]]; then
    echo "superset: skipped (SPACES_SKIP_SUPERSET=1)"
    exit 0
fi

venv="${SPACES_SUPERSET_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/jupyterhub-spaces/superset-venv}"
python="${SPACES_SUPERSET_PYTHON:-python3}"

# Superset alone does not start with a plain install: rich, cachetools and this
# flask-caching are needed too. psycopg2-binary lets it reach the spaces' PostgreSQL
# databases. Changing this list rebuilds the environment on the next run.
pins=(
    "apache-superset==6.1.0"
    "rich"
    "cachetools"
    "flask-caching==2.3.1"
    "psycopg2-binary"
)
stamp="$venv/.jupyterhub-spaces-pins"
wanted="$(printf '%s\n' "${pins[@]}")"

template="$(dirname "$venv")/superset-metadata-template.db"

# The first Superset start on a machine migrates its metadata database; do it here,
# once, so the demo's first SQL Lab opens in seconds. Needs the checkout's
# virtualenv (scripts/setup.d/10-python.sh), which setup.sh names in $PYTHON.
build_template() {
    if [[ -f "$template" ]]; then
        return 0
    fi
    if [[ -z "${PYTHON:-}" || ! -x "${PYTHON:-}" ]]; then
        echo "superset: no checkout virtualenv; the first session builds the template database"
        return 0
    fi
    SPACES_SUPERSET_VENV="$venv" SPACES_SUPERSET_TEMPLATE_DB="$template" \
        nice -n 10 "$PYTHON" -m jupyterhub_spaces.tools.superset_template
}

if [[ -x "$venv/bin/superset" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    build_template
    echo "superset: ready in $venv"
    exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if ! command -v "$python" >/dev/null; then
    echo "superset: $python not found; install Python 3.10-3.12 or set SPACES_SUPERSET_PYTHON" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))'; then
    echo "superset: Superset 6.1 needs Python 3.10-3.12, $("$python" --version 2>&1) found; set SPACES_SUPERSET_PYTHON" >&2
    exit 1
fi
# Debian and Ubuntu split venv (ensurepip) out of the interpreter
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    . "$root/scripts/lib/apt.sh"
    ver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install "python$ver-venv" || apt_install python3-venv
fi

echo "superset: building its virtualenv in $venv"
echo "superset: the first time this downloads about 150 MB and takes a few minutes"
mkdir -p "$(dirname "$venv")"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install --upgrade --progress-bar on pip wheel setuptools
nice -n 10 "$venv/bin/python" -m pip install --progress-bar on "${pins[@]}"

# A quick import proves the environment starts before it is marked ready.
"$venv/bin/python" -c "import superset, flask_caching, psycopg2; print('superset: version', superset.__version__ if hasattr(superset, '__version__') else 'installed')" \
    2>/dev/null || "$venv/bin/superset" version
printf '%s\n' "${pins[@]}" > "$stamp"
# a new Superset may change its schema: its template is made again
rm -f "$template"
build_template
echo "superset: ready in $venv"
