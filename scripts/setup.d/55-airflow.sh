#!/usr/bin/env bash
# Build the virtualenv that runs Apache Airflow, the engine behind the spaces' Tasks.
# Airflow pins many packages of its own, so it does not share the checkout's
# environment: like Superset's it lives in a cache directory outside the checkout and
# is reused by every checkout, test run and CI run on this machine. Nothing of the
# checkout is installed into it: the hub starts Airflow with PYTHONPATH naming the
# checkout, so Airflow imports jupyterhub_spaces.airflow (the provider, which imports
# nothing of the hub or service) from the checkout that runs it.
#
#   scripts/setup.d/55-airflow.sh [demo|test]
#
# Environment:
#   SPACES_AIRFLOW_VENV    where the virtualenv lives
#                          (default ${XDG_CACHE_HOME:-$HOME/.cache}/jupyterhub-spaces/airflow-venv)
#   SPACES_AIRFLOW_PYTHON  the Python used to create it (default python3; 3.10-3.13)
#   SPACES_SKIP_AIRFLOW=1  skip this step (tasks tests then skip)
#
# Idempotent: when the virtualenv holds exactly these pins it returns at once.
set -euo pipefail

if [[ "${SPACES_SKIP_AIRFLOW:-}" == "1" ]]; then
    echo "airflow: skipped (SPACES_SKIP_AIRFLOW=1)"
    exit 0
fi

venv="${SPACES_AIRFLOW_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/jupyterhub-spaces/airflow-venv}"
python="${SPACES_AIRFLOW_PYTHON:-python3}"

# dag-factory builds DAGs from the spaces' YAML files; papermill runs notebooks;
# ipykernel is the kernel papermill starts; psycopg2-binary and asyncpg (Airflow 3
# opens its metadata database both ways) let Airflow keep its metadata in PostgreSQL.
# Changing this list rebuilds the environment on the next run.
pins=(
    "apache-airflow==3.3.2"
    "dag-factory==1.1.0"
    "papermill==2.7.0"
    "ipykernel"
    "psycopg2-binary"
    "asyncpg"
)
stamp="$venv/.jupyterhub-spaces-pins"
wanted="$(printf '%s\n' "${pins[@]}")"

if [[ -x "$venv/bin/airflow" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    echo "airflow: ready in $venv"
    exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if ! command -v "$python" >/dev/null; then
    echo "airflow: $python not found; install Python 3.10-3.13 or set SPACES_AIRFLOW_PYTHON" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))'; then
    echo "airflow: Airflow 3.3 needs Python 3.10-3.13, $("$python" --version 2>&1) found; set SPACES_AIRFLOW_PYTHON" >&2
    exit 1
fi
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    . "$root/scripts/lib/apt.sh"
    ver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install "python$ver-venv" || apt_install python3-venv
fi

echo "airflow: building its virtualenv in $venv"
echo "airflow: the first time this downloads about 300 MB and takes a few minutes"
mkdir -p "$(dirname "$venv")"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install --upgrade --progress-bar off pip wheel setuptools
nice -n 10 "$venv/bin/python" -m pip install --progress-bar off "${pins[@]}"

"$venv/bin/python" -c "import airflow, dagfactory, papermill; print('airflow: version', airflow.__version__)"
printf '%s\n' "${pins[@]}" > "$stamp"
echo "airflow: ready in $venv"
