"""The tools' pure parts: which tools a session offers, Superset's generated config and
command, and the RStudio command (run for real against a stand-in ``rserver``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from jupyterhub_spaces.tools import catalog, serverproxy
from jupyterhub_spaces.tools.superset import (
    SupersetSetup,
    gunicorn_command,
    make_setup,
    make_superset_config,
    space_databases,
    superset_driver_url,
    superset_env,
)

NOTHING = lambda p: False  # noqa: E731
EVERYTHING = lambda p: True  # noqa: E731


def states(env, which=lambda name, path=None: None, is_exe=NOTHING):
    return {s.name: s for s in catalog.tool_states(env, which=which, is_exe=is_exe)}


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, None),
        ("", ()),
        ("superset", ("superset",)),
        ("jupyterlab, sqllab ,rstudio", ("jupyterlab", "sqllab", "rstudio")),
    ],
)
def test_selected_tools(raw, expected):
    env = {} if raw is None else {"SPACES_TOOLS": raw}
    assert catalog.selected_tools(env) == expected


def test_superset_venv_defaults_to_the_cache_and_can_be_overridden():
    assert catalog.superset_venv({"HOME": "/h"}) == "/h/.cache/jupyterhub-spaces/superset-venv"
    assert (
        catalog.superset_venv({"HOME": "/h", "XDG_CACHE_HOME": "/c"})
        == "/c/jupyterhub-spaces/superset-venv"
    )
    assert catalog.superset_venv({"SPACES_SUPERSET_VENV": "/opt/ss"}) == "/opt/ss"


def test_missing_programs_make_tools_unavailable_with_a_reason():
    s = states({"SPACES_TOOLS": "superset,sqllab,rstudio", "HOME": "/nowhere"})
    assert {n: st.available for n, st in s.items()} == {
        "superset": False,
        "sqllab": False,
        "rstudio": False,
    }
    assert "50-superset.sh" in s["superset"].reason
    assert s["sqllab"].reason.startswith("SQL Lab")
    assert "rserver" in s["rstudio"].reason and "/usr/lib/rstudio-server/bin" in s["rstudio"].reason


def test_rserver_is_found_on_path_or_in_rstudio_servers_folder():
    on_path = states({"PATH": "/x"}, which=lambda name, path=None: "/x/rserver")
    assert on_path["rstudio"].program == "/x/rserver"
    packaged = states({"PATH": "/x"}, is_exe=lambda p: p == "/usr/lib/rstudio-server/bin/rserver")
    assert (
        packaged["rstudio"].available
        and packaged["rstudio"].program == "/usr/lib/rstudio-server/bin/rserver"
    )


def fake_superset_venv(tmp_path) -> str:
    """A virtualenv with the two programs a session looks for to offer Superset."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for prog in ("gunicorn", "superset"):
        (venv / "bin" / prog).write_text("#!/bin/sh\n")
        (venv / "bin" / prog).chmod(0o755)
    return str(venv)


def test_only_selected_tools_are_offered(monkeypatch, tmp_path):
    monkeypatch.setenv("SPACES_SUPERSET_VENV", fake_superset_venv(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no rserver
    monkeypatch.setenv("SPACES_TOOLS", "jupyterlab,sqllab")
    # SQL Lab alone still needs Superset running, without Superset's launcher entry
    assert serverproxy.setup_superset()["launcher_entry"]["enabled"] is False
    assert serverproxy.setup_sqllab()["launcher_entry"]["title"] == "SQL Lab"
    monkeypatch.setenv("SPACES_TOOLS", "jupyterlab")
    with pytest.raises(serverproxy.ToolUnavailable, match="not selected"):
        serverproxy.setup_superset()
    with pytest.raises(serverproxy.ToolUnavailable, match="not selected"):
        serverproxy.setup_sqllab()
    monkeypatch.setenv("SPACES_TOOLS", "rstudio")
    with pytest.raises(serverproxy.ToolUnavailable, match="rserver"):
        serverproxy.setup_rstudio()


def test_superset_proxy_entry_sets_user_and_token_headers(monkeypatch, tmp_path):
    monkeypatch.setenv("SPACES_SUPERSET_VENV", str(tmp_path))
    for prog in ("gunicorn", "superset"):
        (tmp_path / "bin").mkdir(exist_ok=True)
        (tmp_path / "bin" / prog).write_text("")
        (tmp_path / "bin" / prog).chmod(0o755)
    monkeypatch.setenv("SPACES_TOOLS", "superset")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    cfg = serverproxy.setup_superset()
    assert cfg["unix_socket"].endswith("/superset.sock")
    assert cfg["absolute_url"] is True
    token = cfg["environment"]["SPACES_SUPERSET_PROXY_TOKEN"]
    assert len(token) >= 32
    assert cfg["request_headers_override"] == {
        "X-Spaces-User": "alice",
        "X-Spaces-Proxy-Token": token,
    }
    assert "{base_url}" in cfg["command"]
    # the socket's folder is private to the session's user
    assert oct(os.stat(os.path.dirname(cfg["unix_socket"])).st_mode & 0o777) == "0o700"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql+psycopg://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:////data/a.sqlite", "sqlite:////data/a.sqlite"),
    ],
)
def test_database_urls_use_supersets_driver(url, expected):
    assert superset_driver_url(url) == expected


def test_space_databases_from_env_first_then_databases_json(tmp_path):
    f = tmp_path / "databases.json"
    f.write_text(
        json.dumps(
            {
                "asset": {"url": "sqlite:////a"},
                "collaborative": "postgresql+psycopg://c/db",
                "publish": {"sqlalchemy_url": "sqlite:////p"},
            }
        )
    )
    env = {"SPACES_ASSET_DB_URL": "sqlite:////from-env"}
    assert space_databases(env, str(f)) == (
        {"kind": "asset", "name": "Space assets", "url": "sqlite:////from-env"},
        {
            "kind": "collaborative",
            "name": "Space collaborative",
            "url": "postgresql+psycopg2://c/db",
        },
        {"kind": "publish", "name": "Space publish", "url": "sqlite:////p"},
    )
    assert space_databases({}, str(tmp_path / "missing.json")) == ()


def setup_for(mode="workbench", databases=()):
    return SupersetSetup(
        user="alice",
        mode=mode,
        app_root="/user/alice/sales/superset",
        home="/h/.spaces/superset",
        venv="/v",
        databases=databases,
        template_db="/c/t.db",
    )


def test_generated_superset_config_is_valid_python_with_the_security_settings():
    text = make_superset_config(
        setup_for(databases=({"kind": "asset", "name": "Space assets", "url": "sqlite:////a"},))
    )
    compile(text, "superset_config.py", "exec")
    for line in [
        "AUTH_TYPE = AUTH_REMOTE_USER",
        "AUTH_USER_REGISTRATION = False",
        "CUSTOM_SECURITY_MANAGER = SpacesSecurityManager",
        "ADDITIONAL_MIDDLEWARE = [ProxyUserMiddleware]",
        'RECAPTCHA_PUBLIC_KEY = ""',
        'APP_ICON = "/user/alice/sales/superset/static/assets/images/superset-logo-horiz.png"',
        'SESSION_COOKIE_PATH = "/user/alice/sales/superset/"',
        'SQLALCHEMY_DATABASE_URI = "sqlite:////h/.spaces/superset/superset.db"',
        "PREVENT_UNSAFE_DB_CONNECTIONS = False",
    ]:
        assert line in text.splitlines()


def test_unsafe_connections_stay_refused_without_sqlite_databases():
    text = make_superset_config(
        setup_for(databases=({"kind": "asset", "name": "A", "url": "postgresql+psycopg2://h/db"},))
    )
    assert "PREVENT_UNSAFE_DB_CONNECTIONS" not in text


def test_superset_runs_on_the_socket_from_its_own_virtualenv():
    s = setup_for()
    cmd = gunicorn_command(s, "/run/s.sock")
    assert cmd[0] == "/v/bin/gunicorn"
    assert cmd[cmd.index("--bind") + 1] == "unix:/run/s.sock"
    assert cmd[-1] == "superset.app:create_app()"
    env = superset_env(
        s, "tok", {"PATH": "/usr/bin", "PYTHONPATH": "/ours", "VIRTUAL_ENV": "/ours"}
    )
    assert env["PATH"].split(os.pathsep)[0] == "/v/bin"
    assert env["VIRTUAL_ENV"] == "/v" and "PYTHONPATH" not in env
    assert env["SUPERSET_APP_ROOT"] == "/user/alice/sales/superset"
    assert env["SUPERSET_CONFIG_PATH"] == "/h/.spaces/superset/superset_config.py"


def test_mode_comes_from_the_session_and_defaults_to_workbench():
    base = {"HOME": "/h", "JUPYTERHUB_USER": "bob"}
    assert make_setup({**base, "SPACES_MODE": "sandbox"}, "/user/bob/x/").mode == "sandbox"
    assert make_setup(base, "/user/bob/x/").mode == "workbench"
    s = make_setup(base, "/user/bob/x/")
    assert (s.user, s.app_root, s.home) == ("bob", "/user/bob/x/superset", "/h/.spaces/superset")


FAKE = """#!{python}
import json, sys
print(json.dumps(sys.argv[1:]))
"""


def test_rstudio_command_runs_rserver_with_the_flags_rsession_proxy_uses(tmp_path, monkeypatch):
    fake = tmp_path / "rserver"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SPACES_TOOLS", "rstudio")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPACES_RSTUDIO_DATA_DIR", str(tmp_path / "rs"))
    monkeypatch.setenv("SPACES_ASSET_DB_URL", "postgresql+psycopg://a@h/assets")
    cfg = serverproxy.setup_rstudio()
    # jupyter-server-proxy fills these in
    cmd = [c.format(port=8787, base_url="/user/alice/sales/") for c in cfg["command"]]
    assert cmd[0] == str(fake)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    flags = dict(a[2:].split("=", 1) for a in json.loads(out))
    assert flags["www-port"] == "8787"
    assert flags["www-root-path"] == "/user/alice/sales/rstudio/"
    assert flags["auth-none"] == "1"
    assert flags["server-user"] == "alice"
    assert flags["server-data-dir"] == str(tmp_path / "rs")
    key = tmp_path / "rs" / "secure-cookie-key"
    assert flags["secure-cookie-key-file"] == str(key)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert cfg["environment"]["R_LIBS_USER"] == str(tmp_path / "home" / ".spaces" / "R" / "library")
    assert cfg["environment"]["SPACES_ASSET_DB_URL"] == "postgresql+psycopg://a@h/assets"
    assert cfg["launcher_entry"]["title"] == "RStudio"


@pytest.mark.parametrize("sandbox, mode", [(True, "sandbox"), (False, "workbench")])
async def test_tools_part_exports_selection_and_mode(sandbox, mode):
    from types import SimpleNamespace

    from traitlets.config import Config

    from jupyterhub_spaces.session import load_part
    from jupyterhub_spaces.tools.part import JUPYTER_CONFIG_DIR

    part = load_part("jupyterhub_spaces.tools.part:part")
    cfg = Config()
    cfg.ToolsSettings.superset_venv = "/opt/superset"
    ctx = SimpleNamespace(
        tools=("jupyterlab", "sqllab"),
        sandbox=sandbox,
        backend="local",
        settings=SimpleNamespace(config=cfg),
    )
    env = await part.start(ctx)
    assert env["SPACES_TOOLS"] == "jupyterlab,sqllab"
    assert env["SPACES_MODE"] == mode
    assert env["SPACES_SUPERSET_VENV"] == "/opt/superset"
    assert env["JUPYTER_CONFIG_PATH"] == JUPYTER_CONFIG_DIR
    assert env["SPACES_SUPERSET_TEMPLATE_DB"].endswith(
        "jupyterhub-spaces/superset-metadata-template.db"
    )
    assert os.path.exists(
        os.path.join(JUPYTER_CONFIG_DIR, "jupyter_server_config.d", "jupyterhub_spaces_tools.json")
    )
    assert await part.stop(ctx) is None


@pytest.fixture
def placeholder(tmp_path):
    import threading

    from jupyterhub_spaces.tools.superset_run import StartingHandler, StartingServer

    path = str(tmp_path / "s.sock")
    server = StartingServer(path, StartingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path
    server.shutdown()
    server.server_close()


def test_while_superset_starts_its_socket_answers_503_retry_later(placeholder):
    from jupyterhub_spaces.tools.superset_run import _Unix, answers

    for accept, ctype in (
        ("application/json", "application/json"),
        ("text/html,*/*", "text/html; charset=utf-8"),
    ):
        conn = _Unix(placeholder)
        conn.request("GET", "/user/a/s/superset/sqllab/", headers={"Accept": accept})
        r = conn.getresponse()
        body = r.read()
        conn.close()
        assert (r.status, r.getheader("Retry-After"), r.getheader("Content-Type")) == (
            503,
            "2",
            ctype,
        )
        if ctype == "application/json":
            assert json.loads(body)["error"] == "starting"
        else:
            assert b"Superset is starting" in body and b'http-equiv="refresh"' in body
    # the launcher waits for a 200 before handing the socket over
    assert answers(placeholder, "/user/a/s/superset/health") is False


async def test_status_counts_the_placeholder_as_up_but_not_ready(placeholder):
    from jupyterhub_spaces.tools.status import _answers_http

    assert await _answers_http("/health", unix_socket=placeholder) is True
    assert await _answers_http("/health", unix_socket=placeholder, need_ok=True) is False
    assert await _answers_http("/health", unix_socket=placeholder + ".missing") is False


def test_databases_come_from_the_sessions_credentials_file(tmp_path):
    f = tmp_path / "creds.json"
    f.write_text(
        json.dumps(
            {
                "space_id": 3,
                "user": "alice",
                "databases": {
                    "asset": {"url": "postgresql+psycopg://r:pw@db/assets", "login": "r"},
                    "publish": {"url": "postgresql+psycopg://r:pw@db/publish", "login": "r"},
                },
            }
        )
    )
    s = make_setup({"HOME": str(tmp_path), "SPACES_DATABASES_FILE": str(f)}, "/user/alice/x/")
    assert [(d["kind"], d["url"]) for d in s.databases] == [
        ("asset", "postgresql+psycopg2://r:pw@db/assets"),
        ("publish", "postgresql+psycopg2://r:pw@db/publish"),
    ]


async def test_local_sessions_find_superset_in_the_hub_machines_cache(monkeypatch):
    from types import SimpleNamespace

    from jupyterhub_spaces.tools.part import part

    monkeypatch.setenv("XDG_CACHE_HOME", "/srv/cache")
    monkeypatch.delenv("SPACES_SUPERSET_VENV", raising=False)
    ctx = SimpleNamespace(
        tools=("superset",), sandbox=False, backend="local", settings=SimpleNamespace(config=None)
    )
    env = await part.start(ctx)
    assert env["SPACES_SUPERSET_VENV"] == "/srv/cache/jupyterhub-spaces/superset-venv"
    assert (
        env["SPACES_SUPERSET_TEMPLATE_DB"]
        == "/srv/cache/jupyterhub-spaces/superset-metadata-template.db"
    )
    kube = await part.start(SimpleNamespace(**{**vars(ctx), "backend": "kubernetes"}))
    # images say where their Superset is
    assert "SPACES_SUPERSET_VENV" not in kube and "JUPYTER_CONFIG_PATH" not in kube


@pytest.mark.parametrize(
    "location, expected",
    [
        ("http://127.0.0.1:8787/user/a/s/rstudio/", "/user/a/s/rstudio/"),
        ("http://localhost:40001/user/a/s/rstudio/auth?x=1", "/user/a/s/rstudio/auth?x=1"),
        ("https://hub.example.org/user/a/s/rstudio/", "https://hub.example.org/user/a/s/rstudio/"),
        ("/user/a/s/rstudio/", "/user/a/s/rstudio/"),
    ],
)
def test_rstudio_redirects_stay_on_the_sessions_url(location, expected):
    from types import SimpleNamespace

    response = SimpleNamespace(headers={"Location": location})
    serverproxy.keep_redirects_in_session(response)
    assert response.headers["Location"] == expected


async def test_a_status_report_probes_the_tools_at_once(tmp_path, monkeypatch):
    """A starting Superset holds each probe for the whole probe timeout; probed one
    after the other, a report outlasted the spaces service's wait for it, and a fresh
    session's tiles said 'the session has not answered yet'."""
    import asyncio
    from types import SimpleNamespace

    from jupyterhub_spaces.tools import serverproxy
    from jupyterhub_spaces.tools.status import SpacesTools, Tools

    monkeypatch.setenv("SPACES_SUPERSET_VENV", fake_superset_venv(tmp_path))
    monkeypatch.setenv("SPACES_TOOLS", "jupyterlab,superset,sqllab")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SPACES_TOOLS_RUNTIME_DIR", str(tmp_path / "run"))
    serverproxy.runtime_dir.cache_clear()
    open_now, most = 0, 0

    async def silent(reader, writer):  # a Superset that accepts and does not answer yet
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        await reader.read()  # until the probe gives up and hangs up
        open_now -= 1
        writer.close()

    try:
        os.makedirs(tmp_path / "run", exist_ok=True)
        server = await asyncio.start_unix_server(silent, serverproxy.superset_socket())
        tools = Tools(SimpleNamespace(base_url="/user/a/s/", web_app=None), SpacesTools(probe_timeout=1.0))
        report = await tools.report("/user/a/s/")
        server.close()
    finally:
        serverproxy.runtime_dir.cache_clear()
    assert [(t["name"], t["status"]) for t in report] == [
        ("jupyterlab", "ready"), ("superset", "waiting"), ("sqllab", "waiting")]
    assert most == 2  # both probes were waiting on Superset together
