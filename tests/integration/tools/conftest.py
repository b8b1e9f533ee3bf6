"""Fixtures for the tools tests: a real session Jupyter server with jupyter-server-proxy
and the spaces tools extension, and Superset from its own virtualenv behind it.
Machinery in ``tools_session.py`` (:class:`ToolsSession`, :func:`run_sql`).

Fixtures
--------
``rserver_dir`` (module)
    A folder holding an executable ``rserver``: RStudio Server's own when it is
    installed on this machine (then the test drives the real one), otherwise a
    stand-in that speaks HTTP on ``--www-port`` and answers with the flags it was
    started with, as JSON (no package registry here offers RStudio Server).
``asset_sqlite`` (module)
    ``(url, rows)``: a SQLite file with a ``sales`` table, standing for the space's
    Asset database.

The Superset sessions are module fixtures of the test modules, so each module starts
exactly one Superset. Tests skip when Superset's virtualenv is missing: build it with
``scripts/setup.d/50-superset.sh``.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import textwrap

import pytest

from jupyterhub_spaces.tools.catalog import find_rserver

SALES = [(1, "north", 120.5), (2, "south", 80.25), (3, "east", 42.0)]

FAKE_RSERVER = '''#!{python}
"""Stand-in for RStudio Server's rserver: serve HTTP on --www-port, answer every GET
with the flags it was started with."""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

flags = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"flags": flags, "path": self.path}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(flags["www-port"])), Handler).serve_forever()
'''


@pytest.fixture(scope="module")
def rserver_dir(tmp_path_factory):
    real = find_rserver(os.environ)
    if real:
        return os.path.dirname(real)
    d = tmp_path_factory.mktemp("fake-rstudio")
    script = d / "rserver"
    script.write_text(textwrap.dedent(FAKE_RSERVER.format(python=sys.executable)))
    script.chmod(0o755)
    return str(d)


@pytest.fixture(scope="module")
def asset_sqlite(tmp_path_factory):
    path = tmp_path_factory.mktemp("asset-db") / "assets.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, amount REAL)")
        conn.executemany("INSERT INTO sales VALUES (?, ?, ?)", SALES)
    return f"sqlite:///{path}", SALES
