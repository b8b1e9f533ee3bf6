"""How the hub runs its managed services (the spaces service, the idle culler,
Airflow's components): each stops within a few seconds of being asked.

JupyterHub stops managed services one after the other when it shuts down, and waits
for each to exit after SIGINT. Some programs take half a minute to act on it
(Airflow's API server, the idle culler), so stopping the embedded default with
Ctrl-C took over a minute. Each command therefore runs under coreutils' ``timeout``
with no time limit: it passes the signal the hub sends on to the command's whole
process group and kills whatever is left :data:`GRACE` seconds later.
"""

from __future__ import annotations

import shutil

#: seconds a service has to exit after the hub asks it to stop
GRACE = 3


def stops_promptly(command: list[str], grace: int = GRACE) -> list[str]:
    """``command``, killed with its children ``grace`` seconds after the hub's stop
    signal if it has not exited by then."""
    timeout = shutil.which("timeout") or "/usr/bin/timeout"
    return [timeout, f"--kill-after={grace}", "0", *command]
