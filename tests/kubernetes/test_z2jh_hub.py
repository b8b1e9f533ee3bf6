"""A `helm install` of jupyterhub-spaces on Zero to JupyterHub 4.2.0 gives a working
product: the hub runs the way that chart runs it, against a real Kubernetes API server.

What is real: this chart rendered by Helm's engine (helm-python-sdk) with its own
values, its objects created in the API server, JupyterHub with KubeSpaceSpawner,
configurable-http-proxy, the spaces service as the hub runs it, PostgreSQL for the
catalog and the space databases, the kube-apiserver and the test kubelet of
``cluster.py`` / ``kubelet.py``, and `jupyterhub-spaces upgrade-db` run with the hub
container's environment.

What stands in, and why: the Zero to JupyterHub chart cannot be downloaded here (no
Helm repository access), so only this chart's templates are rendered and the hub is
fed the values the way that chart feeds it: its 4.2.0 defaults with this chart's
``jupyterhub:`` values merged over them (as Helm merges a dependency's values), in
``secret/values.yaml``, read by stand-ins of its ``jupyterhub_config.py`` and
``z2jh.py`` written from reading its source (``z2jh_hub/``: ``get_config(key,
default)``, ``set_config_if_not_none``, its fresh ``services`` / ``load_roles`` lists,
``hub.config``, the bare ``exec`` of ``jupyterhub_config.d`` and ``hub.extraConfig``).
The hub pod's files are laid out in a temporary tree (``z2jh_pod.py``): the rendered
Secrets where ``hub.extraVolumeMounts`` mount them, and the files the hub image's
Dockerfile copies where it copies them. Cluster addresses are loopback ports, given in
the environment variables Kubernetes sets for Services; the proxy "pod" is a
configurable-http-proxy process. The idle culler is off: Zero to JupyterHub points it
at port 8081, which a shared test machine cannot reserve.

alice logs in through the hub's login page, opens the Spaces app, activates a
workbench space whose pod the API server accepts, and reaches JupyterLab; bob's
sandbox pod runs the sandbox image. Each of the faults this replaced fails here: the
config file's get_config() call (the hub does not start), extra_user_scopes.append
(403 on the Spaces app), the service reading Zero to JupyterHub's file (no service or
an empty SQLite catalog), two mounts at /home/jovyan (the API server refuses the pod),
the sandbox image unused, SQLite space databases, upgrade-db without the catalog URL;
the chart's Kubernetes version and the image build are checked at the end.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[0] / "integration"))
sys.path.insert(0, str(HERE.parents[0] / "integration" / "databases"))

pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
spawner_module = pytest.importorskip("jupyterhub_spaces.spawner")
if not hasattr(spawner_module.KubeSpaceSpawner, "network_policy"):
    pytest.skip("KubeSpaceSpawner needs kubespawner", allow_module_level=True)

from db_roles import drop_roles  # noqa: E402
from spaces_hub import (  # noqa: E402
    API, PASSWORD, PREFIX, USERS, BrowserSession, api_json, ensure_proxy, free_port,
    postgres_available, postgres_database,
)
from z2jh_pod import ROOT, HubPod  # noqa: E402

pytestmark = pytest.mark.slow

RELEASE = "jhub"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def databases():
    if not postgres_available():
        message = "no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"z{secrets.token_hex(4)}_"
    with postgres_database("spaces_z2jh_catalog") as catalog, \
            postgres_database("spaces_z2jh_dbs") as spacedbs:
        yield catalog, spacedbs, prefix
    drop_roles(prefix)


@pytest.fixture(scope="module")
async def hub_pod(kube_api, databases, tmp_path_factory):
    """The hub pod's files, and this chart's objects created in a namespace of their own."""
    from kubernetes_asyncio import client
    from kubernetes_asyncio.utils import create_from_dict

    catalog, spacedbs, prefix = databases
    core = client.CoreV1Api(kube_api)
    namespace = f"spaces-z2jh-{secrets.token_hex(3)}"
    await core.create_namespace({"metadata": {"name": namespace}})
    root = tmp_path_factory.mktemp("z2jh-hub")
    jupyter_config = root / "jupyter-config"
    jupyter_config.mkdir()
    # the test kubelet runs sessions as this user, root on CI machines
    (jupyter_config / "jupyter_server_config.json").write_text(
        '{"ServerApp": {"allow_root": true}}')
    values = {
        "database": {"catalogUrl": catalog, "adminUrl": spacedbs, "rolePrefix": prefix},
        # the proxy reaches the service on loopback, at a port free on this machine
        "spaces": {"service": {"port": free_port(), "hubHost": "127.0.0.1"}},
        "jupyterhub": {
            "hub": {
                "config": {
                    "DummyAuthenticator": {"password": PASSWORD},
                    "Authenticator": {"allowed_users": list(USERS)},
                },
                "services": {"test-admin": {}},
                "loadRoles": {"admin": {"services": ["test-admin"]}},
            },
            "singleuser": {"extraEnv": {"JUPYTER_CONFIG_PATH": str(jupyter_config)}},
            "cull": {"enabled": False},
        },
    }
    pod = HubPod(root, values, release=RELEASE, namespace=namespace).lay_out()
    for obj in pod.objects:
        await create_from_dict(kube_api, obj, namespace=namespace)
    yield pod
    await core.delete_collection_namespaced_pod(namespace)


class Z2JHHub:
    """The hub process and its proxy "pod", started from a laid-out hub pod."""

    def __init__(self, pod: HubPod, kubeconfig: Path):
        self.pod = pod
        self.hub_port, self.api_port, self.public_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.public_port}"
        self.log_path = pod.root / "hub.log"
        self.proxy_log = pod.root / "proxy.log"
        self.procs: list[subprocess.Popen] = []
        self.admin_token = pod.hub_secret["hub.services.test-admin.apiToken"]
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("JUPYTERHUB_", "SPACES_", "CONFIGPROXY_"))}
        base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
        self.container_env = {**base, **pod.container_env(), **pod.env()}
        self.env = {
            **self.container_env,
            "KUBECONFIG": str(kubeconfig),
            "HUB_SERVICE_HOST": "127.0.0.1", "HUB_SERVICE_PORT": str(self.hub_port),
            "PROXY_API_SERVICE_HOST": "127.0.0.1", "PROXY_API_SERVICE_PORT": str(self.api_port),
            "PROXY_PUBLIC_SERVICE_HOST": "127.0.0.1",
            "PROXY_PUBLIC_SERVICE_PORT": str(self.public_port),
        }

    def exec_in_hub(self, *argv: str) -> subprocess.CompletedProcess:
        """``kubectl exec deploy/hub -- argv``: the container's environment and
        working directory."""
        return subprocess.run(list(argv), env=self.container_env, cwd=self.pod.workdir,
                              capture_output=True, text=True, timeout=300)

    def start(self, timeout: float = 120) -> None:
        token = self.pod.hub_secret["hub.config.ConfigurableHTTPProxy.auth_token"]
        hub = f"http://127.0.0.1:{self.hub_port}"
        self._spawn([ensure_proxy(), "--ip", "127.0.0.1", "--port", str(self.public_port),
                     "--api-ip", "127.0.0.1", "--api-port", str(self.api_port),
                     "--default-target", hub, "--error-target", f"{hub}/hub/error"],
                    {**os.environ, "CONFIGPROXY_AUTH_TOKEN": token}, self.proxy_log)
        # the hub container's command in Zero to JupyterHub's Deployment
        self._spawn([sys.executable, "-m", "jupyterhub", "--config",
                     str(self.pod.etc / "jupyterhub_config.py"), "--upgrade-db"],
                    self.env, self.log_path)
        deadline = time.monotonic() + timeout
        while True:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited:\n{self.log_tail()}")
            try:
                r = requests.get(self.url + API, timeout=2)
                if r.status_code == 401 and r.headers.get("Content-Type", "").startswith(
                        "application/json"):
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the hub did not serve the Spaces API:\n{self.log_tail()}")
            time.sleep(0.5)

    def _spawn(self, argv, env, log: Path) -> None:
        with open(log, "ab") as out:
            self.procs.append(subprocess.Popen(argv, env=env, cwd=self.pod.workdir, stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True))

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)

    def log_tail(self, n: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-n:])

    def hub_api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}/hub/api{path}", timeout=30,
                                headers={"Authorization": f"token {self.admin_token}"}, **kwargs)

    def login(self, user: str) -> BrowserSession:
        """``user`` logged in through the hub's login page, as a browser is."""
        s = BrowserSession(self.url)
        page = s.get("/hub/login")
        page.raise_for_status()
        form = {"username": user, "password": PASSWORD}
        m = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
        if m:
            form["_xsrf"] = m.group(1)
        r = s.post("/hub/login", data=form, allow_redirects=False, xsrf=False)
        assert r.status_code == 302, f"login of {user}: {r.status_code} {r.text[:300]}"
        return s


@pytest.fixture(scope="module")
def z2jh_hub(hub_pod, kubelet, kubeconfig, databases):
    from jupyterhub_spaces import demo
    from jupyterhub_spaces.settings import SpacesSettings
    from jupyterhub_spaces.store import Store, current_revision, make_engine

    hub = Z2JHHub(hub_pod, kubeconfig)
    # the documented upgrade step, run before the first start too
    hub.upgrade = hub.exec_in_hub(str(BIN / "jupyterhub-spaces"), "upgrade-db")
    catalog = hub_pod.secrets()["jupyterhub-spaces-database"]
    # what the command left in the empty catalog (the store below would create it)
    engine = make_engine(catalog["catalog-url"])
    hub.upgraded_to = current_revision(engine)
    engine.dispose()
    settings = SpacesSettings(db_url=catalog["catalog-url"], source_db_url=catalog["source-url"],
                              data_root=str(hub_pod.root / "demo-data"))
    hub.store = Store(settings.db_url)
    demo.seed(hub.store, settings)
    hub.start()
    yield hub
    hub.stop()
    hub.store.dispose()


def space_id(hub: Z2JHHub, slug: str) -> int:
    from jupyterhub_spaces import orm

    with hub.store.transaction() as db:
        return db.query(orm.Space).filter_by(slug=slug).one().id


def wait_status(client, hub: Z2JHHub, sid: int, want: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = api_json(client.get(f"{API}spaces/{sid}/status"))
        if status.get("state") == want:
            return status
        if status.get("state") == "failed" or time.monotonic() > deadline:
            raise AssertionError(f"space {sid} never became {want}: {status}\n{hub.log_tail()}")
        time.sleep(0.5)


async def session_pods(hub: Z2JHHub, kube_api, user: str, slug: str) -> list:
    from kubernetes_asyncio import client

    pods = (await client.CoreV1Api(kube_api).list_namespaced_pod(
        hub.pod.namespace, label_selector=f"spaces.jupyter.org/space={slug}")).items
    return [p for p in pods
            if (p.metadata.annotations or {}).get("hub.jupyter.org/username") == user]


def test_upgrade_db_in_the_hub_pod_migrates_the_postgresql_catalog(z2jh_hub):
    from jupyterhub_spaces.store import head_revision

    result = z2jh_hub.upgrade
    assert result.returncode == 0, result.stderr
    assert z2jh_hub.upgraded_to == head_revision(), result.stderr
    # not a SQLite file in the hub's working directory
    assert not (z2jh_hub.pod.workdir / "jupyterhub_spaces.sqlite").exists()


def test_alice_reaches_jupyterlab_in_a_workbench_space(z2jh_hub, kube_api):
    alice = z2jh_hub.login("alice")
    # the Spaces app (every user may use it: extra_user_scopes)
    app = alice.get(PREFIX)
    assert app.status_code == 200, f"{app.status_code} {app.url}\n{z2jh_hub.log_tail()}"
    assert app.url.startswith(z2jh_hub.url + PREFIX)
    # the service reads the PostgreSQL catalog the chart names, not a file of its own
    assert not (z2jh_hub.pod.workdir / "jupyterhub_spaces.sqlite").exists()

    sid = space_id(z2jh_hub, "store-footprint")
    r = alice.post(f"{API}spaces/{sid}/activate")
    assert r.status_code in (200, 202), r.text
    status = wait_status(alice, z2jh_hub, sid, "active")
    assert status["mode"] == "workbench"
    lab = alice.get("/user/alice/store-footprint/lab")
    assert lab.status_code == 200 and "JupyterLab" in lab.text, lab.url


async def test_alice_session_pod_is_what_the_chart_promises(z2jh_hub, kube_api):
    pods = await session_pods(z2jh_hub, kube_api, "alice", "store-footprint")
    assert len(pods) == 1, "run after test_alice_reaches_jupyterlab_in_a_workbench_space"
    [pod] = pods
    assert pod.status.phase == "Running"
    [notebook] = [c for c in pod.spec.containers if c.name == "notebook"]
    values = z2jh_hub.pod.merged["sessions"]
    workbench = f"{values['workbench']['image']['name']}:{values['workbench']['image']['tag']}"
    assert notebook.image == workbench
    paths = [m.mount_path for m in notebook.volume_mounts]
    assert len(paths) == len(set(paths))
    [home] = [m for m in notebook.volume_mounts if m.mount_path == "/home/jovyan"]
    claims = {v.name: v.persistent_volume_claim.claim_name for v in pod.spec.volumes
              if v.persistent_volume_claim}
    assert "store-footprint" in claims[home.name]
    # the space databases are PostgreSQL, reachable from the pod; never hub-local files
    env = {e.name: e.value for e in notebook.env}
    for name in ("SPACES_ASSET_DB_URL", "SPACES_COLLABORATIVE_DB_URL", "SPACES_PUBLISH_DB_URL"):
        assert env[name].startswith("postgresql"), (name, env[name])


async def test_bob_sandbox_pod_runs_the_sandbox_image(z2jh_hub, kube_api):
    bob = z2jh_hub.login("bob")
    assert bob.get(PREFIX).status_code == 200
    sid = space_id(z2jh_hub, "retail-forecasting")
    r = bob.post(f"{API}spaces/{sid}/activate")
    assert r.status_code in (200, 202), r.text
    deadline = time.monotonic() + 120
    while not (pods := await session_pods(z2jh_hub, kube_api, "bob", "retail-forecasting")):
        assert time.monotonic() < deadline, z2jh_hub.log_tail()
        await asyncio.sleep(0.5)
    [pod] = pods
    assert pod.metadata.labels["spaces.jupyter.org/mode"] == "sandbox"
    [notebook] = [c for c in pod.spec.containers if c.name == "notebook"]
    values = z2jh_hub.pod.merged["sessions"]["sandbox"]["image"]
    assert notebook.image == f"{values['name']}:{values['tag']}"
    z2jh_hub.hub_api("DELETE", "/users/bob/servers/retail-forecasting")


def test_chart_refuses_sqlite_and_old_kubernetes():
    """Without PostgreSQL the chart does not render; its Kubernetes floor is Zero to
    JupyterHub 4.2.0's."""
    import helm_python

    from z2jh_pod import render

    with pytest.raises(helm_python.HelmError, match="database.catalogUrl is required"):
        render({}, RELEASE, "spaces")
    chart = yaml.safe_load((ROOT / "helm" / "jupyterhub-spaces" / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.28.0-0"


def test_build_script_builds_and_pushes_the_images_the_chart_names(tmp_path):
    """`scripts/build-images.sh` (``make images``) builds and pushes exactly the
    three images the chart's defaults name, under the admin's registry."""
    from z2jh_pod import render

    _objects, values = render({"database": {"catalogUrl": "postgresql://a@b/c",
                                            "adminUrl": "postgresql://a@b/d"}}, RELEASE, "spaces")
    named = {
        f"{values['jupyterhub']['hub']['image']['name']}:{values['jupyterhub']['hub']['image']['tag']}",
        *(f"{values['sessions'][m]['image']['name']}:{values['sessions'][m]['image']['tag']}"
          for m in ("workbench", "sandbox")),
    }
    out = subprocess.run([str(ROOT / "scripts" / "build-images.sh"), "--dry-run",
                          "--registry", "registry.example.org/team"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    pushed = set(re.findall(r"^docker push (\S+)$", out.stdout, re.M))
    assert pushed == {f"registry.example.org/team/{image}" for image in named}
