"""Write, as JSON to the file named by the first argument, every route a session's
Superset registers: run with Superset's own Python, with the session's
``SUPERSET_CONFIG_PATH`` and ``SUPERSET_APP_ROOT`` (Superset prints to stdout itself).

For each route: the rule, its methods, its endpoint, and the Flask-AppBuilder
permission and view menu the route's view checks when it checks one by name (what
``@protect`` / ``@has_access`` compare against the user's roles). The app is built
from the same code and configuration as the running one, so its ``url_map`` is the
running app's.
"""

from __future__ import annotations

import json
import logging
import sys


def permission_of(app, endpoint: str) -> tuple[str | None, str | None]:
    view = app.view_functions.get(endpoint)
    owner = getattr(view, "__self__", None)
    if owner is None:
        return None, None
    name = getattr(view, "__name__", "")
    perm = getattr(view, "_permission_name", None) or name
    mapped = (getattr(owner, "method_permission_name", None) or {}).get(name)
    if mapped:
        perm = mapped
    menu = getattr(owner, "class_permission_name", None) or type(owner).__name__
    return "can_" + perm if not perm.startswith("can_") else perm, menu


def main() -> None:
    logging.disable(logging.CRITICAL)
    from superset.app import create_app

    app = create_app()
    routes = []
    for rule in app.url_map.iter_rules():
        perm, menu = permission_of(app, rule.endpoint)
        routes.append({
            "rule": rule.rule,
            "methods": sorted(rule.methods - {"HEAD", "OPTIONS"}),
            "endpoint": rule.endpoint,
            "arguments": sorted(rule.arguments),
            "permission": perm,
            "view_menu": menu,
        })
    with open(sys.argv[1], "w") as f:
        json.dump(sorted(routes, key=lambda r: (r["rule"], r["endpoint"])), f)


if __name__ == "__main__":
    main()
