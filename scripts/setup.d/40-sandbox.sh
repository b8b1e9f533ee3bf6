#!/usr/bin/env bash
# Sandbox sessions: the Guacamole JavaScript client the gateway serves (from npm, copied
# into the package as data) and, as root on Debian, the desktop programs a local
# sandbox session runs (TigerVNC's Xvnc and vncpasswd, openbox, Chromium).
#
#   scripts/setup.d/40-sandbox.sh [demo|test]
#
# guacd is not packaged by Debian: install guacd >= 1.5.5 yourself to use sandbox
# sessions locally (docs/sandbox.md); without it they refuse to start, and the tests
# that need it skip, saying so.
#
# Environment:
#   SPACES_SKIP_SANDBOX_APT=1  do not install Debian packages
#
# Idempotent: returns quickly when everything is in place.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)

"$here/jupyterhub_spaces/sandbox/client/build.sh"

need=()
command -v Xvnc >/dev/null || need+=(tigervnc-standalone-server)
command -v vncpasswd >/dev/null || need+=(tigervnc-tools)
command -v openbox >/dev/null || need+=(openbox)
command -v chromium >/dev/null || need+=(chromium)
if [[ "${1:-}" == "test" ]]; then
    # the desktop tests look for a window, type into a terminal and copy text
    command -v xdotool >/dev/null || need+=(xdotool)
    command -v xterm >/dev/null || need+=(xterm)
    command -v xclip >/dev/null || need+=(xclip)
fi
if ((${#need[@]} == 0)); then
    echo "sandbox: desktop programs present"
elif [[ "${SPACES_SKIP_SANDBOX_APT:-}" == "1" ]] || [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "sandbox: not installing ${need[*]} (install them to run sandbox sessions locally)"
else
    echo "sandbox: installing ${need[*]}"
    . "${SPACES_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/scripts/lib/apt.sh"
    apt_install "${need[@]}" >/dev/null
fi
if command -v guacd >/dev/null; then
    echo "sandbox: guacd $(guacd -v 2>&1 | head -1)"
else
    echo "sandbox: guacd not installed: local sandbox sessions refuse to start (see docs/sandbox.md)"
fi
