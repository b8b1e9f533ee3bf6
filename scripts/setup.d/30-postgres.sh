#!/usr/bin/env bash
# PostgreSQL for the tests (the demo uses SQLite and skips this step): a server must
# answer at $SPACES_TEST_POSTGRES_URL (default
# postgresql+psycopg://postgres@127.0.0.1:5432/postgres, no password). Tests create
# and drop their own uniquely named databases there.
#
# On Debian/Ubuntu, when nothing answers: installs the `postgresql` package if
# missing, starts (or creates) its cluster with pg_ctlcluster, and, if the server
# asks the test user for a password, lets user postgres connect from 127.0.0.1 and
# ::1 without one (trust) -- a setting for a test machine, not for production.
#
#   scripts/setup.d/30-postgres.sh demo|test
set -euo pipefail

mode="${1:-test}"
if [[ "$mode" != test ]]; then
    exit 0
fi
root="${SPACES_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
python="${PYTHON:-$root/.venv/bin/python}"
url="${SPACES_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}"
. "$root/scripts/lib/apt.sh"

# prints nothing and succeeds when the server answers; else prints why not
probe() {
    "$python" - "$url" <<'PY'
import sys
import psycopg
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://", 1)
try:
    psycopg.connect(url, connect_timeout=3).close()
except Exception as e:
    print(str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__)
    sys.exit(1)
PY
}

if why="$(probe)"; then
    echo "postgres: reachable at ${url#*://}"
    exit 0
fi
echo "postgres: not reachable yet ($why)"

case "$url" in
    *@127.0.0.1:5432/* | *@localhost:5432/*) ;;
    *) echo "postgres: $url is not a local server on port 5432; start it yourself" >&2; exit 1 ;;
esac

if ! command -v pg_ctlcluster >/dev/null; then
    echo "postgres: installing postgresql"
    apt_install postgresql
fi

cluster="$(pg_lsclusters --no-header 2>/dev/null | awk '$3 == 5432 {print $1" "$2; exit}')"
if [[ -z "$cluster" ]]; then
    version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
    echo "postgres: creating cluster $version main on port 5432"
    as_root pg_createcluster --port 5432 "$version" main
    cluster="$version main"
fi
read -r version name <<<"$cluster"
status="$(pg_lsclusters --no-header | awk -v v="$version" -v n="$name" '$1 == v && $2 == n {print $4}')"
if [[ "$status" != online* ]]; then
    echo "postgres: starting cluster $version $name"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
fi

for _ in $(seq 1 30); do
    why="$(probe)" && break
    case "$why" in
        *password*|*authentication*) break ;;
    esac
    sleep 1
done

if [[ "$why" == *password* || "$why" == *authentication* ]]; then
    hba="$(as_root runuser -u postgres -- psql -tAc 'SHOW hba_file' 2>/dev/null || true)"
    hba="${hba:-/etc/postgresql/$version/$name/pg_hba.conf}"
    echo "postgres: letting user postgres connect from 127.0.0.1 and ::1 without a password ($hba)"
    tmp="$(mktemp)"
    {
        echo "# added by jupyterhub-spaces scripts/setup.d/30-postgres.sh for the tests"
        echo "host all postgres 127.0.0.1/32 trust"
        echo "host all postgres ::1/128 trust"
        as_root cat "$hba"
    } >"$tmp"
    as_root cp "$tmp" "$hba"
    rm -f "$tmp"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload
    sleep 1
fi

if why="$(probe)"; then
    echo "postgres: reachable at ${url#*://}"
else
    echo "postgres: still not reachable at $url: $why" >&2
    exit 1
fi
