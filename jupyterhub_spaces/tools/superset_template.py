"""Build Superset's template metadata database once per machine:
``python -m jupyterhub_spaces.tools.superset_template``.

The first Superset start on a machine migrates an empty metadata database and creates
every permission (a minute or two); every later session copies the result. The setup
script runs this so that the demo's first SQL Lab opens in seconds, not minutes.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time

from .catalog import cache_dir, superset_state, superset_venv


def template_path(env) -> str:
    return env.get("SPACES_SUPERSET_TEMPLATE_DB") or os.path.join(
        cache_dir(env), "superset-metadata-template.db"
    )


def build(env=None, limit: float = 1800) -> str:
    """Start Superset once in a throwaway home until the template exists."""
    env = dict(os.environ if env is None else env)
    template = template_path(env)
    if os.path.exists(template):
        return template
    ok, reason, _ = superset_state(env)
    if not ok:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory(prefix="spaces-superset-template-") as home:
        run_env = {
            **env,
            "HOME": home,
            "JUPYTERHUB_USER": "template",
            "SPACES_SUPERSET_VENV": superset_venv(env),
            "SPACES_SUPERSET_TEMPLATE_DB": template,
            "SPACES_SUPERSET_PROXY_TOKEN": secrets.token_urlsafe(16),
        }
        for key in (
            "SPACES_MODE",
            "SPACES_ASSET_DB_URL",
            "SPACES_COLLABORATIVE_DB_URL",
            "SPACES_PUBLISH_DB_URL",
            "SPACES_DATABASES_FILE",
            "SPACES_SUPERSET_HOME",
        ):
            run_env.pop(key, None)
        cmd = [
            sys.executable,
            "-m",
            "jupyterhub_spaces.tools.superset_run",
            "--base-url",
            "/",
            "--socket",
            os.path.join(home, "s.sock"),
        ]
        log = open(os.path.join(home, "superset.log"), "wb")
        proc = subprocess.Popen(
            cmd, env=run_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        started = time.monotonic()
        try:
            while not os.path.exists(template):
                if proc.poll() is not None:
                    log.close()
                    with open(os.path.join(home, "superset.log"), errors="replace") as f:
                        tail = f.read()[-3000:]
                    raise SystemExit(f"superset: could not build its template database:\n{tail}")
                if time.monotonic() - started > limit:
                    raise SystemExit("superset: the template database took too long to build")
                time.sleep(1)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            log.close()
    return template


def main() -> None:
    print("superset: building the template metadata database (once; a minute or two)", flush=True)
    print("superset: template ready at", build(), flush=True)


if __name__ == "__main__":
    main()
