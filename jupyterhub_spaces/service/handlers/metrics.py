"""``GET /metrics``: the service's Prometheus metrics (:mod:`..metrics`), for spaces
admins and for tokens holding JupyterHub's ``read:metrics`` scope (a Prometheus
scraping with a service token)."""

from __future__ import annotations

from ..base import APIError, APIHandler
from ..metrics import CONTENT_TYPE

SCOPE = "read:metrics"


class MetricsHandler(APIHandler):
    """``GET /metrics``"""

    async def get(self):
        # spaces admins, and tokens with read:metrics
        if not (self.is_admin or SCOPE in self.hub_user.get("scopes", [])):
            raise APIError(
                403,
                f"the metrics are for spaces admins and for tokens with the {SCOPE} scope: "
                "give your Prometheus a JupyterHub service token with a role holding it",
            )
        self.set_header("Content-Type", CONTENT_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.finish(self.settings["metrics"].exposition())


default_handlers = [(r"metrics", MetricsHandler)]
