"""Start one Airflow component for the hub: ``python -m jupyterhub_spaces.airflow.component
api-server|scheduler|dag-processor|triggerer``.

The API server migrates Airflow's metadata database first (``airflow db migrate``,
idempotent); the other components wait until it is migrated. Then the process becomes
the component (``exec``), so the hub supervises Airflow itself.
"""

from __future__ import annotations

import os
import subprocess
import sys

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in COMPONENTS:
        sys.exit(f"usage: python -m jupyterhub_spaces.airflow.component {'|'.join(COMPONENTS)}")
    component = args[0]
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    if component == "api-server":
        subprocess.run([airflow, "db", "migrate"], check=True)
    else:
        subprocess.run([airflow, "db", "check-migrations", "--migration-wait-timeout", "600"], check=True)
    os.execv(airflow, [airflow, component])


if __name__ == "__main__":
    main()
