"""The handler modules of the spaces service.

Each module ends with ``default_handlers = [(pattern, HandlerClass), ...]``; patterns
are relative to the service prefix (``/services/spaces/``), so ``"api/v1/spaces"``
serves ``/services/spaces/api/v1/spaces``. Add a module here with a one-line edit.
"""

MODULES = [
    "jupyterhub_spaces.service.handlers.meta",
    "jupyterhub_spaces.service.handlers.metrics",
    "jupyterhub_spaces.service.handlers.spaces",
    "jupyterhub_spaces.service.handlers.collaborators",
    "jupyterhub_spaces.service.handlers.users",
    "jupyterhub_spaces.service.handlers.catalog",
    "jupyterhub_spaces.service.handlers.subscriptions",
    "jupyterhub_spaces.service.handlers.audit",
    "jupyterhub_spaces.service.openapi",
    "jupyterhub_spaces.service.handlers.activation",
    "jupyterhub_spaces.service.handlers.publish",
    "jupyterhub_spaces.service.handlers.codeassets",
    "jupyterhub_spaces.service.handlers.tasks",
    "jupyterhub_spaces.service.handlers.dags",
    "jupyterhub_spaces.service.handlers.pages",
]
