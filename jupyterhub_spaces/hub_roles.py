"""What the hub must grant for jupyterhub-spaces: the admin scope and the spaces
service's role. Every hub configuration (embedded, Kubernetes) takes them from here,
so the service's permissions are written once."""

from __future__ import annotations

SERVICE = "spaces"
ADMIN_SCOPE = "custom:spaces:admin"

#: the custom scope, for ``c.JupyterHub.custom_scopes``
CUSTOM_SCOPES = {
    ADMIN_SCOPE: {"description": "Administer jupyterhub-spaces: subscriptions, audit log."},
}

#: what the service does with the hub's API: start and stop users' space sessions,
#: follow their progress, and read where a session listens (with its own token) to
#: report its tools' status
SERVICE_SCOPES = [
    "list:users",
    "read:users",
    "read:servers",
    "servers",
    "delete:servers",
    "access:servers",
    "admin:server_state",
]


def service_role(service: str = SERVICE) -> dict:
    """The role for ``c.JupyterHub.load_roles`` that gives the service its scopes."""
    return {
        "name": f"{service}-service",
        "description": "The spaces service starts and stops space sessions for users.",
        "scopes": list(SERVICE_SCOPES),
        "services": [service],
    }


def grant_every_user(jupyterhub_section, *scopes: str) -> None:
    """Add ``scopes`` to ``c.JupyterHub.extra_user_scopes`` (pass ``c.JupyterHub``),
    keeping whatever config loaded before set there.

    The trait is a Set: ``c.JupyterHub.extra_user_scopes.append(...)`` is dropped
    without a word when the config is applied. What an earlier file left may be
    nothing, a list or set (Zero to JupyterHub's ``hub.config``), or a pending
    ``.add``; each is kept.
    """
    from traitlets.config.loader import LazyConfigValue

    current = jupyterhub_section.get("extra_user_scopes")
    if isinstance(current, LazyConfigValue):
        current.update(set(scopes))
    else:
        jupyterhub_section.extra_user_scopes = {*(current or ()), *scopes}
