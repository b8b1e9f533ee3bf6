"""JupyterHub configuration of the embedded default (``make demo``).

JupyterHub on http://127.0.0.1:8000 with configurable-http-proxy from the checkout's
``node_modules``, SQLite databases under ``var/`` (or ``$SPACES_VAR_DIR``), the demo
accounts (their password is printed at start and kept in ``var/demo-password``), the
spaces service managed by the hub, local space sessions and the idle culler.

Other ports: ``--JupyterHub.bind_url``, ``--JupyterHub.hub_port`` and
``--ConfigurableHTTPProxy.api_url`` on the command line, ``$SPACES_SERVICE_PORT`` for
the spaces service. This file only maps settings onto traits; the settings shared with
the service are in ``spaces_config.py``.
"""

import os
import sys
from pathlib import Path

from jupyterhub_spaces.demo import ADMIN_USERS, private_state
from jupyterhub_spaces.hub_gate import space_server_gate
from jupyterhub_spaces.hub_roles import ADMIN_SCOPE, CUSTOM_SCOPES, SERVICE, service_role
from jupyterhub_spaces.managed import stops_promptly
from jupyterhub_spaces.tasks.engine import AirflowSite, airflow_services, engine_role

c = get_config()  # noqa: F821

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VAR = Path(os.environ.get("SPACES_VAR_DIR") or ROOT / "var")
BIN = Path(sys.executable).parent
SPACES_CONFIG = HERE / "spaces_config.py"

load_subconfig(str(SPACES_CONFIG))  # noqa: F821

# -- the hub's state is its own: what it (and the managed service) writes is 0600,
# and var/ is 0700 with the files of earlier runs made private
os.umask(0o077)
private_state(str(VAR))

# -- the hub and its proxy
c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = 8081
c.JupyterHub.db_url = f"sqlite:///{VAR / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(VAR / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(VAR / "jupyterhub.pid")
c.ConfigurableHTTPProxy.command = [str(ROOT / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
c.ConfigurableHTTPProxy.pid_file = str(VAR / "proxy.pid")
# sessions keep running across a hub restart
c.JupyterHub.cleanup_servers = False

# -- pages: the branded login and home pages (hub_config/templates) extend the stock ones
c.JupyterHub.template_paths = [str(HERE / "templates")]

# -- login: the demo accounts; the first start loads the demo catalog
c.JupyterHub.authenticator_class = "spaces-demo"
c.DemoAuthenticator.password_file = str(VAR / "demo-password")
c.Authenticator.admin_users = set(ADMIN_USERS)

# -- sessions: one named server per space; the unnamed server is not a space, so
# users land on the Spaces app instead
c.JupyterHub.spawner_class = "local-space"
c.JupyterHub.allow_named_servers = True
# a named server exists only as a space its user may start now: the gate refuses any
# other name, a locked space and a second active space before the hub answers or
# records anything (jupyterhub_spaces.hub_gate)
c.JupyterHub.named_server_limit_per_user = space_server_gate
# so an allowed start is answered at once (202) and the Spaces app follows its
# progress live
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
c.JupyterHub.default_url = f"/services/{SERVICE}/"
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.start_timeout = 120
c.LocalSpaceSpawner.home_dir_template = str(VAR / "spaces-home" / "{username}" / "{space}")
# each hub user's sessions run as the account spaces-<user>, in a bubblewrap sandbox
c.LocalSpaceSpawner.account_name_template = "spaces-{username}"

# -- permissions
c.JupyterHub.custom_scopes = dict(CUSTOM_SCOPES)
# every user may use the Spaces app and API
c.JupyterHub.extra_user_scopes = [f"access:services!service={SERVICE}"]
c.JupyterHub.load_roles = [
    {
        "name": "spaces-admin",
        "description": "Spaces admins: grant subscriptions, read the audit log.",
        "scopes": [ADMIN_SCOPE],
        "users": list(ADMIN_USERS),
    },
    service_role(SERVICE),
    {
        "name": "idle-culler",
        "description": "Stops sessions idle for an hour.",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    },
]

# -- Tasks: Apache Airflow from its own virtualenv (scripts/setup.d/55-airflow.sh),
# its home and metadata database in the hub's state directory
AIRFLOW_VENV = Path(
    os.environ.get("SPACES_AIRFLOW_VENV")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jupyterhub-spaces" / "airflow-venv"
)
SPACES_SERVICE_URL = f"http://127.0.0.1:{os.environ.get('SPACES_SERVICE_PORT', '10101')}"
airflow = AirflowSite(
    home=VAR / "airflow",
    venv=AIRFLOW_VENV,
    db_url=f"sqlite:///{VAR / 'airflow' / 'airflow.db'}",
    port=int(os.environ.get("SPACES_AIRFLOW_PORT", "10180")),
    ui_port=int(os.environ.get("SPACES_AIRFLOW_UI_PORT", "10181")),
    spaces_api_url=f"{SPACES_SERVICE_URL}/services/{SERVICE}/api/v1/",
)
airflow_managed = airflow_services(airflow) if (AIRFLOW_VENV / "bin" / "airflow").exists() else []
if airflow_managed:
    c.JupyterHub.load_roles.append(engine_role(airflow_managed, SERVICE))
    # spaces admins reach Airflow's own UI at /services/airflow/ (behind the hub login)
    c.JupyterHub.load_roles[0]["scopes"].append(f"access:services!service={airflow.ui_service}")

# -- services
c.JupyterHub.services = [
    {
        "name": SERVICE,
        "url": f"http://127.0.0.1:{os.environ.get('SPACES_SERVICE_PORT', '10101')}",
        "command": stops_promptly([str(BIN / "jupyterhub-spaces-service"), f"--config={SPACES_CONFIG}"]),
        "cwd": str(ROOT),
        # a managed service keeps only a few variables of the hub's environment
        "environment": {
            "SPACES_VAR_DIR": str(VAR),
            "SPACES_AIRFLOW_URL": airflow.url if airflow_managed else "",
        },
        "display": True,
        "oauth_no_confirm": True,
        # the service sees whether a browser user holds the admin scope
        "oauth_client_allowed_scopes": [ADMIN_SCOPE],
    },
    {
        "name": "idle-culler",
        "command": stops_promptly([sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]),
    },
    *airflow_managed,
]
