#!/usr/bin/env bash
# Isolated local sessions (the embedded default): bubblewrap makes each session's
# sandbox, setpriv (util-linux) and useradd/groupadd (passwd) run it as the user's
# own unprivileged account. All three need root, as the hub does.
#
#   scripts/setup.d/15-isolation.sh [demo|test]
#
# Idempotent: returns quickly when everything is in place.
set -euo pipefail

need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v setpriv >/dev/null || need+=(util-linux)
command -v useradd >/dev/null || need+=(passwd)
if ((${#need[@]} == 0)); then
    echo "isolation: $(bwrap --version), setpriv and useradd present"
elif [[ $(id -u) != 0 ]]; then
    echo "isolation: not root, so not installing ${need[*]}: sessions need them, and a hub" \
        "running as root; run 'sudo make demo' (or install them and run the hub as root)"
else
    echo "isolation: installing ${need[*]}"
    . "${SPACES_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/scripts/lib/apt.sh"
    apt_install "${need[@]}" >/dev/null
fi
