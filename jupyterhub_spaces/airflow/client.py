"""The provider's one client of the spaces service's API (standard library only)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request


class SpacesAPIError(RuntimeError):
    """The service refused or failed; ``status`` and ``message`` are its answer."""

    def __init__(self, status: int, message: str, body: dict | None = None):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.body = body or {}


def call(method: str, path: str, body: dict | None = None, timeout: float = 30, run_token: str = "") -> dict:
    """``method`` ``path`` (relative to ``$SPACES_API_URL``) with the JupyterHub service
    token (``$JUPYTERHUB_API_TOKEN``), JSON in and out; with ``run_token`` instead, with
    that run's own credential only (the service token is not sent)."""
    base = os.environ["SPACES_API_URL"]
    if run_token:
        auth = {"X-Spaces-Run-Token": run_token}
    else:
        auth = {"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"}
    request = urllib.request.Request(
        base.rstrip("/") + "/" + path.lstrip("/"),
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={**auth, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {"message": raw.decode(errors="replace")[:500]}
        raise SpacesAPIError(e.code, doc.get("message", ""), doc) from None
