"""The OpenAPI document is valid and lists exactly the service's API routes, each with
exactly the methods its handler implements."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate
from tornado import web

from jupyterhub_spaces.service.app import SpacesService
from jupyterhub_spaces.service.openapi import document

PREFIX = "/services/spaces/"
METHODS = ("get", "post", "put", "patch", "delete")


def route_template(pattern: str) -> str:
    """A tornado route pattern as an OpenAPI path with anonymous parameters."""
    path = pattern[len(PREFIX) - 1:]
    path = path.replace("([^/]+)", "{}").replace("\\.", ".")
    if path.endswith("/?"):
        path = path[:-2] + "/"
    assert not re.search(r"[()\[\]\\*+?$^]", path), f"cannot read route {pattern!r}"
    return path


def implemented(handler: type) -> set[str]:
    return {m for m in METHODS if getattr(handler, m) is not getattr(web.RequestHandler, m)}


def api_routes() -> dict[str, set[str]]:
    app = SpacesService(service_prefix=PREFIX)
    routes = {}
    for pattern, handler, *_ in app.handlers():
        if pattern.startswith(PREFIX + "api/"):
            routes[route_template(pattern)] = implemented(handler)
    return routes


def documented() -> dict[str, set[str]]:
    return {
        re.sub(r"\{[^}]+\}", "{}", path): {m for m in item if m in METHODS}
        for path, item in document(PREFIX)["paths"].items()
    }


def test_document_is_valid_openapi():
    validate(document(PREFIX))


def test_every_route_is_documented_with_its_methods_and_nothing_else():
    routes, doc = api_routes(), documented()
    assert set(routes) - set(doc) == set(), "routes missing from openapi.py"
    assert set(doc) - set(routes) == set(), "documented paths no route serves"
    for path in routes:
        assert routes[path] == doc[path], path


@pytest.mark.parametrize("path", sorted(document(PREFIX)["paths"]))
def test_every_operation_documents_errors_as_json(path):
    item = document(PREFIX)["paths"][path]
    for method in (m for m in METHODS if m in item):
        for code, response in item[method]["responses"].items():
            if int(code) >= 400:
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
