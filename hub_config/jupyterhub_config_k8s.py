"""JupyterHub configuration of jupyterhub-spaces on Kubernetes (the Helm chart).

The hub image installs this file as
``/usr/local/etc/jupyterhub/jupyterhub_config.d/spaces.py``: the Zero to JupyterHub
hub loads it after its own configuration, with ``exec`` in the namespace of its own
``jupyterhub_config.py``. So this file works both there and as a plain
``jupyterhub -f`` file:

- it uses the ``c`` it is given and never calls ``get_config()`` (there it is Zero to
  JupyterHub's ``get_config(key)``);
- it never uses ``__file__`` (there it names Zero to JupyterHub's file);
- it adds to the lists, dicts and sets Zero to JupyterHub filled, never replaces them,
  and adds to each the way its trait type keeps (``extra_user_scopes`` is a Set).

The settings the spaces service reads too are in ``spaces_config_k8s.py``, installed
as ``spaces_config.py`` in the chart's config directory; the service is started with
that file and nothing else. This file maps the values the chart mounts
(``helm/jupyterhub-spaces/templates/secret-values.yaml``) and the OAuth Secret onto
traits, and nothing more: the chart's templates decide every default, claim name and
image. The mount point can be moved with ``$SPACES_CONFIG_DIR`` (tests do).
"""

import os
from pathlib import Path

import yaml

from jupyterhub_spaces.hub_roles import (
    ADMIN_SCOPE,
    CUSTOM_SCOPES,
    SERVICE,
    grant_every_user,
    service_role,
)
from jupyterhub_spaces.hub_gate import space_server_gate

ROOT = Path(os.environ.get("SPACES_CONFIG_DIR", "/usr/local/etc/jupyterhub-spaces"))
SPACES_CONFIG = ROOT / "spaces_config.py"
if not SPACES_CONFIG.is_file():
    # load_subconfig would skip a missing file without a word
    raise FileNotFoundError(
        f"{SPACES_CONFIG} is missing: the hub image installs hub_config/spaces_config_k8s.py "
        "there (or set $SPACES_CONFIG_DIR to the directory holding it)"
    )
load_subconfig(str(SPACES_CONFIG))

values = yaml.safe_load((ROOT / "values" / "values.yaml").read_text())
sandbox = values["sessions"]["sandbox"]
oauth = values["oauth"]


def secret(name, key):
    """One key of a mounted Secret; "" when an optional Secret is not there."""
    path = ROOT / name / key
    return path.read_text().strip() if path.exists() else ""


# -- sessions: one named server per space, run as pods by KubeSpaceSpawner
c.JupyterHub.spawner_class = "kube-space"
c.JupyterHub.allow_named_servers = True
# a named server exists only as a space its user may start now: the gate refuses any
# other name, a locked space and a second active space before the hub answers or
# records anything (jupyterhub_spaces.hub_gate)
c.JupyterHub.named_server_limit_per_user = space_server_gate
# answer a start at once (202) so the Spaces app can follow the spawn's progress live
c.JupyterHub.tornado_settings.update({"slow_spawn_timeout": 0})
# the branded login and home pages (the hub image copies hub_config/templates there),
# after the site's own hub.templatePaths
TEMPLATES = Path(os.environ.get("SPACES_TEMPLATES_DIR", "/usr/local/share/jupyterhub-spaces/templates"))
if TEMPLATES.is_dir():
    c.JupyterHub.template_paths.append(str(TEMPLATES))
c.JupyterHub.default_url = f"/services/{SERVICE}/"
c.KubeSpaceSpawner.image = values["images"]["workbench"]
c.KubeSpaceSpawner.sandbox_image = values["images"]["sandbox"]
c.KubeSpaceSpawner.offered_tools = values["offeredTools"]
c.KubeSpaceSpawner.guacd_image = values["images"]["guacd"]
c.KubeSpaceSpawner.guacd_resources = sandbox["guacd"]["resources"]
c.KubeSpaceSpawner.assets_volume = values["assetsVolume"]
c.KubeSpaceSpawner.protected_claims = values["protectedClaims"]
c.KubeSpaceSpawner.sandbox_network_policy = values["sandboxNetworkPolicy"]
c.KubeSpaceSpawner.sandbox_ingress_from = values["sandboxIngressFrom"]
c.KubeSpaceSpawner.sandbox_egress_to = values["sandboxEgressTo"]

# -- sandbox desktops: guacd is the pod's sidecar, on the pod's loopback
c.SandboxSettings.guacd_host = "127.0.0.1"
c.SandboxSettings.allow_paste = sandbox["allowPaste"]
c.SandboxSettings.recording_path = sandbox["recordingPath"]

# -- login through the organization's OpenID Connect provider
if oauth["enabled"]:
    c.JupyterHub.authenticator_class = "spaces-oauth"
    c.SpacesOAuthenticator.client_id = secret("oauth", "client-id")
    c.SpacesOAuthenticator.client_secret = secret("oauth", "client-secret")
    c.SpacesOAuthenticator.authorize_url = oauth["authorizeUrl"]
    c.SpacesOAuthenticator.token_url = oauth["tokenUrl"]
    c.SpacesOAuthenticator.userdata_url = oauth["userdataUrl"]
    c.SpacesOAuthenticator.oauth_callback_url = oauth["callbackUrl"]
    c.SpacesOAuthenticator.scope = oauth["scope"]
    c.SpacesOAuthenticator.username_claim = oauth["usernameClaim"]
    c.SpacesOAuthenticator.display_name_claim = oauth["displayNameClaim"]
    c.SpacesOAuthenticator.org_claim = oauth["orgClaim"]
    c.SpacesOAuthenticator.allowed_organizations = set(oauth["allowedOrganizations"])
    c.SpacesOAuthenticator.allow_all = oauth["allowAll"]
    c.SpacesOAuthenticator.admin_claim = oauth["adminClaim"]
    c.SpacesOAuthenticator.admin_claim_values = set(oauth["adminClaimValues"])

# -- permissions (added to what the Zero to JupyterHub values set)
c.JupyterHub.custom_scopes.update(CUSTOM_SCOPES)
# every user may use the Spaces app and API
grant_every_user(c.JupyterHub, f"access:services!service={SERVICE}")
c.JupyterHub.load_roles.append(service_role(SERVICE))

# -- the Spaces API and web app, in the hub pod; the proxy reaches it through the
# hub's Service
c.JupyterHub.services.append(
    {
        "name": SERVICE,
        "url": values["serviceUrl"],
        "command": [
            "jupyterhub-spaces-service",
            f"--config={SPACES_CONFIG}",
            f"--SpacesService.url={values['serviceBindUrl']}",
        ],
        "environment": {"SPACES_CONFIG_DIR": str(ROOT)},
        "display": True,
        "oauth_no_confirm": True,
        "oauth_client_allowed_scopes": [ADMIN_SCOPE],
    }
)
