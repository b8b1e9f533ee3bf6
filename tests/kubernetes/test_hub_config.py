"""The chart's config files load both ways a hub may load them, and the spaces service
reads its own settings and nothing else.

- the way Zero to JupyterHub 4.2.0 runs the hub: its ``jupyterhub_config.py`` (the
  stand-in of ``z2jh_hub/``, see ``z2jh_pod.py``) runs our file from
  ``jupyterhub_config.d`` with a bare ``exec`` in its own namespace;
- as a plain ``jupyterhub -f`` file.

No hub is started here (``test_z2jh_hub.py`` does that): the loaded config is applied
to the JupyterHub application class, which is what the hub does with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from z2jh_pod import HubPod  # noqa: E402

CATALOG = "postgresql+psycopg://spaces:pw@db.example.org:5432/spaces"
ADMIN = "postgresql+psycopg://admin:pw@db.example.org:5432/spacedbs"
VALUES = {"database": {"catalogUrl": CATALOG, "adminUrl": ADMIN}}
SCOPE = "access:services!service=spaces"
# what JupyterHub passes on to a managed service of its own environment (env_keep)
KEPT = {k: os.environ[k] for k in ("PATH", "PYTHONPATH", "LANG") if k in os.environ}


@pytest.fixture
def pod(tmp_path, monkeypatch) -> HubPod:
    pod = HubPod(tmp_path, VALUES, release="jhub", namespace="spaces").lay_out()
    for key, value in pod.env().items():
        monkeypatch.setenv(key, value)
    # what Kubernetes sets in the hub pod for the chart's Services
    for name, port in (("HUB", 8081), ("PROXY_API", 8001), ("PROXY_PUBLIC", 80)):
        monkeypatch.setenv(f"{name}_SERVICE_HOST", "10.0.0.1")
        monkeypatch.setenv(f"{name}_SERVICE_PORT", str(port))
    return pod


def load(path: Path):
    """``path`` loaded as ``jupyterhub --config`` loads it (a fresh z2jh module: the
    stand-in caches the values it read)."""
    from traitlets.config.loader import PyFileConfigLoader

    sys.modules.pop("z2jh", None)
    saved = list(sys.path)
    try:
        return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    finally:
        sys.path[:] = saved
        sys.modules.pop("z2jh", None)


def applied(config):
    """The JupyterHub traits ``config`` gives the hub."""
    from jupyterhub.app import JupyterHub

    return JupyterHub(config=config)


@pytest.fixture(params=["zero-to-jupyterhub", "jupyterhub -f"])
def loaded(request, pod):
    if request.param == "zero-to-jupyterhub":
        return load(pod.etc / "jupyterhub_config.py")
    return load(pod.etc / "jupyterhub_config.d" / "spaces.py")


def test_hub_config_loads_and_every_user_may_use_the_spaces_app(loaded):
    hub = applied(loaded)
    assert hub.spawner_class.__name__ == "KubeSpaceSpawner"
    # extra_user_scopes is a Set: an append() is lost without a word (every user 403)
    assert SCOPE in hub.extra_user_scopes
    assert {s["name"] for s in hub.services} >= {"spaces"}
    assert "spaces-service" in {r["name"] for r in hub.load_roles}
    assert "custom:spaces:admin" in hub.custom_scopes


def test_what_zero_to_jupyterhub_set_is_kept(pod):
    hub = applied(load(pod.etc / "jupyterhub_config.py"))
    assert "jupyterhub-idle-culler" in {s["name"] for s in hub.services}
    assert "jupyterhub-idle-culler" in {r["name"] for r in hub.load_roles}
    assert hub.authenticator_class.__name__ == "DummyAuthenticator"
    assert hub.tornado_settings["slow_spawn_timeout"] == 0


def test_settings_made_in_zero_to_jupyterhub_values_stay(tmp_path, monkeypatch):
    values = {**VALUES, "jupyterhub": {"hub": {
        "config": {"JupyterHub": {"extra_user_scopes": ["read:users:name"],
                                  "tornado_settings": {"xsrf_cookie_kwargs": {"secure": True}}}},
        "templatePaths": ["/srv/site-templates"],
    }}}
    pod = HubPod(tmp_path, values).lay_out()
    for key, value in pod.env().items():
        monkeypatch.setenv(key, value)
    for name in ("HUB", "PROXY_API"):
        monkeypatch.setenv(f"{name}_SERVICE_HOST", "10.0.0.1")
        monkeypatch.setenv(f"{name}_SERVICE_PORT", "8081")
    hub = applied(load(pod.etc / "jupyterhub_config.py"))
    assert hub.extra_user_scopes == {"read:users:name", SCOPE}
    assert hub.tornado_settings == {"xsrf_cookie_kwargs": {"secure": True},
                                    "slow_spawn_timeout": 0}
    # the site's templates first, then ours
    assert hub.template_paths == ["/srv/site-templates", str(pod.share / "templates")]


def service_command(config) -> list[str]:
    [spaces] = [s for s in applied(config).services if s["name"] == "spaces"]
    return spaces["command"]


def test_service_is_started_with_its_own_settings_file(loaded, pod):
    command = service_command(loaded)
    configs = [a.split("=", 1)[1] for a in command if a.startswith("--config=")]
    assert configs == [str(pod.spaces_etc / "spaces_config.py")]


def test_service_settings_load_with_only_what_a_managed_service_gets(loaded, pod):
    """The hub gives a managed service its own environment, not the pod's: the file
    must load there (Zero to JupyterHub's own file fails: no *_SERVICE_* variables)."""
    [spaces] = [s for s in applied(loaded).services if s["name"] == "spaces"]
    config = [a.split("=", 1)[1] for a in spaces["command"] if a.startswith("--config=")][0]
    env = {**KEPT, **spaces["environment"]}
    probe = ("import sys; from traitlets.config.loader import PyFileConfigLoader as L; "
             "c = L(sys.argv[1]).load_config(); "
             "print(c.SpacesSettings.db_url, c.SpaceDatabases.backend, c.SpaceDatabases.admin_url)")
    out = subprocess.run([sys.executable, "-c", probe, config], env=env, text=True,
                         capture_output=True, cwd=pod.workdir)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [CATALOG, "postgresql", ADMIN]


def test_service_refuses_to_run_on_a_config_it_cannot_load(pod):
    """Given Zero to JupyterHub's file (what ``--config={__file__}`` named there), the
    service stops with the reason instead of serving a SQLite catalog of its own."""
    bin_dir = Path(sys.executable).parent
    env = {**KEPT, "SPACES_CONFIG_DIR": str(pod.spaces_etc)}
    out = subprocess.run(
        [str(bin_dir / "jupyterhub-spaces-service"), f"--config={pod.etc / 'jupyterhub_config.py'}"],
        env=env, text=True, capture_output=True, cwd=pod.workdir, timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert "could not load the config file" in out.stderr
    assert "_SERVICE_" in out.stderr  # the cause is in the log
    assert not list(pod.workdir.glob("*.sqlite"))


def test_service_refuses_to_run_without_its_database_secret(pod):
    (pod.spaces_etc / "database" / "catalog-url").unlink()
    bin_dir = Path(sys.executable).parent
    out = subprocess.run(
        [str(bin_dir / "jupyterhub-spaces-service"), f"--config={pod.spaces_etc / 'spaces_config.py'}"],
        env={**KEPT, "SPACES_CONFIG_DIR": str(pod.spaces_etc)},
        text=True, capture_output=True, cwd=pod.workdir, timeout=120,
    )
    assert out.returncode == 1
    assert "catalog-url" in out.stderr and "jupyterhub-spaces-database" in out.stderr
    assert not list(pod.workdir.glob("*.sqlite"))


def test_hub_pod_names_the_catalog_for_upgrade_db(pod):
    """`kubectl exec deploy/hub -- jupyterhub-spaces upgrade-db` runs with the
    container's environment: it must name the catalog the hub uses."""
    assert pod.container_env()["JUPYTERHUB_SPACES_DB_URL"] == CATALOG
