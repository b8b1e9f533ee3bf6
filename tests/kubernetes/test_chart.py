"""The Helm chart renders offline, every object is valid Kubernetes, and its values
reach the right traits.

Rendering uses Helm's own Go engine through helm-python-sdk (no helm binary, no
network). The Zero to JupyterHub dependency cannot be fetched here, so these tests
render this chart's own templates and check the values it hands to that chart
against the objects it renders (see docs/deploy-kubernetes.md, "Limitations").
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

helm_python = pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "jupyterhub-spaces"
CONFIG = ROOT / "hub_config" / "jupyterhub_config_k8s.py"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from z2jh_pod import HubPod  # noqa: E402
OLDEST_SCHEMA = min(kubernetes_validate.utils.all_versions(), key=lambda v: tuple(
    int(x) for x in v.split(".")))

# the least a install needs: the PostgreSQL server
MINIMAL = {
    "database": {
        "catalogUrl": "postgresql+psycopg://spaces:pw@db.example.org:5432/spaces",
        "adminUrl": "postgresql+psycopg://admin:pw@db.example.org:5432/spacedbs",
    },
}

FULL_VALUES = {
    "database": {
        "catalogUrl": "postgresql+psycopg://spaces:pw@db.example.org:5432/spaces",
        "sourceUrl": "postgresql+psycopg://reader:pw@db.example.org:5432/sources",
        "adminUrl": "postgresql+psycopg://admin:pw@db.example.org:5432/spacedbs",
        "sessionHost": "db.example.org",
        "sessionPort": 5432,
    },
    "oauth": {
        "enabled": True,
        "clientId": "hub-client",
        "clientSecret": "s3cret",
        "authorizeUrl": "https://id.example.org/authorize",
        "tokenUrl": "https://id.example.org/token",
        "userdataUrl": "https://id.example.org/userinfo",
        "callbackUrl": "https://hub.example.org/hub/oauth_callback",
        "allowedOrganizations": ["acme"],
    },
    "assets": {"existingClaim": "product-files"},
    "sharedStorage": {"enabled": True, "existingClaim": "space-shared"},
    "networkPolicy": {"databases": [{"ipBlock": {"cidr": "10.20.0.5/32"}}]},
    "tools": {"rstudio": {"enabled": False}},
}


def render(values: dict | None = None) -> list[dict]:
    """Every object the chart renders with ``values`` (default: :data:`MINIMAL`)."""
    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render(MINIMAL if values is None else values, name="hub",
                                 namespace="spaces")
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def chart_values(overrides: dict | None = None) -> dict:
    with helm_python.Chart.load(CHART) as chart:
        return chart.merge_values(overrides or {})


@pytest.mark.parametrize("values", [MINIMAL, FULL_VALUES], ids=["defaults", "production"])
@pytest.mark.parametrize("version", [OLDEST_SCHEMA, kubernetes_validate.utils.latest_version()])
def test_every_rendered_object_is_valid_kubernetes(values, version):
    objects = render(values)
    assert {o["kind"] for o in objects} >= {"Secret", "NetworkPolicy"}
    for obj in objects:
        # strict: an unknown field (a typo in a template) fails too
        kubernetes_validate.validate(obj, version, strict=True)


def test_defaults_render_the_objects_a_first_install_needs():
    objects = render()
    secrets = by_kind(objects, "Secret")
    assert set(secrets) == {"jupyterhub-spaces-values", "jupyterhub-spaces-database"}
    # the hub may manage the per-pod sandbox policies
    [role] = by_kind(objects, "Role").values()
    assert role["rules"] == [{"apiGroups": ["networking.k8s.io"],
                              "resources": ["networkpolicies"],
                              "verbs": ["get", "list", "create", "update", "delete"]}]
    [binding] = by_kind(objects, "RoleBinding").values()
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub",
                                    "namespace": "spaces"}]
    claims = by_kind(objects, "PersistentVolumeClaim")
    assert set(claims) == {"jupyterhub-spaces-assets"}
    # an uninstall must never take the product files with it
    assert claims["jupyterhub-spaces-assets"]["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep"
    }
    db = secrets["jupyterhub-spaces-database"]["stringData"]
    assert db["catalog-url"] == MINIMAL["database"]["catalogUrl"]
    assert db["admin-url"] == MINIMAL["database"]["adminUrl"]
    # the source tables default to the space databases' own database (views work)
    assert db["source-url"] == MINIMAL["database"]["adminUrl"]


@pytest.mark.parametrize(
    "database, named",
    [
        ({}, "database.catalogUrl is required"),
        ({"catalogUrl": MINIMAL["database"]["catalogUrl"]}, "database.adminUrl is required"),
        ({**MINIMAL["database"], "catalogUrl": "sqlite:////srv/jupyterhub/spaces.sqlite"},
         "database.catalogUrl is not a PostgreSQL URL"),
        ({**MINIMAL["database"], "adminUrl": "sqlite:///x"}, "database.adminUrl is not a PostgreSQL URL"),
        ({**MINIMAL["database"], "sourceUrl": "sqlite:///x"}, "database.sourceUrl is not a PostgreSQL URL"),
    ],
)
def test_chart_refuses_to_render_without_postgresql(database, named):
    """On Kubernetes the catalog and the space databases are PostgreSQL: sessions are
    pods and could never reach SQLite files inside the hub pod."""
    with pytest.raises(helm_python.HelmError, match=named) as err:
        render({"database": database})
    assert "createSecret" in str(err.value)  # and what else to do


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("-")[0].split("."))


def test_chart_claims_the_kubernetes_versions_zero_to_jupyterhub_needs():
    """Zero to JupyterHub 4.2.0 needs Kubernetes 1.28 (policy/v1 PodDisruptionBudgets
    and the API versions of its other objects)."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    [z2jh] = [d for d in chart["dependencies"] if d["name"] == "jupyterhub"]
    needs = {"4.2.0": (1, 28, 0)}[z2jh["version"]]
    constraint = chart["kubeVersion"]
    assert constraint.startswith(">="), constraint
    assert _version(constraint[2:]) == needs
    guide = (ROOT / "docs" / "deploy-kubernetes.md").read_text()
    [claimed] = re.findall(r"A Kubernetes cluster, version (\d+\.\d+) or newer", guide)
    assert _version(claimed) == needs[:2]


def test_production_values_use_the_given_claims_and_secrets():
    objects = render(FULL_VALUES)
    assert "PersistentVolumeClaim" not in {o["kind"] for o in objects}
    secrets = by_kind(objects, "Secret")
    assert secrets["jupyterhub-spaces-oauth"]["stringData"] == {
        "client-id": "hub-client", "client-secret": "s3cret"}
    assert secrets["jupyterhub-spaces-database"]["stringData"]["catalog-url"] == (
        FULL_VALUES["database"]["catalogUrl"])
    mounted = yaml.safe_load(secrets["jupyterhub-spaces-values"]["stringData"]["values.yaml"])
    assert mounted["assetClaim"] == "product-files"
    assert mounted["sharedClaim"] == "space-shared"
    assert mounted["database"] == {"sessionHost": "db.example.org", "sessionPort": 5432,
                                   "rolePrefix": "spaces_"}
    # the client secret lives in its own Secret, never in the values file
    assert "s3cret" not in secrets["jupyterhub-spaces-values"]["stringData"]["values.yaml"]


def test_secrets_can_be_left_to_the_admin():
    objects = render({"database": {"createSecret": False},
                      "oauth": {"enabled": True, "createSecret": False}})
    # the admin's own Secret is then read as is (the config refuses to start without it)
    assert set(by_kind(objects, "Secret")) == {"jupyterhub-spaces-values"}


def test_oauth_without_client_is_refused_at_render():
    with pytest.raises(helm_python.HelmError, match="oauth.clientId is required"):
        render({**MINIMAL, "oauth": {"enabled": True}})


@pytest.mark.parametrize(
    "values, where",
    [
        ({"spaces": {"spaceLimit": 0}}, "/spaces/spaceLimit"),
        ({"spaces": {"profiles": {"tiny": {"display_name": "x", "cpu_limit": 1,
                                           "mem_limit": "lots"}}}}, "mem_limit"),
        ({"spaces": {"spaceLimt": 3}}, "spaceLimt"),
        ({"sessions": {"sandbox": {"guacd": {"image": {"pullPolicy": "Sometimes"}}}}},
         "pullPolicy"),
        ({"assets": {"accessModes": ["ReadManyTimes"]}}, "accessModes"),
    ],
)
def test_schema_refuses_bad_values(values, where):
    with pytest.raises(helm_python.HelmError) as err:
        render({**MINIMAL, **values})
    assert where in str(err.value)


# ---- the schema documents every value ------------------------------------------

def _schema():
    return yaml.safe_load((CHART / "values.schema.yaml").read_text())


def _resolve(node, schema):
    if "$ref" in node:
        target = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return {**target, **node}
    return node


def _undocumented(node, schema, path=""):
    node = _resolve(node, schema)
    missing = [] if node.get("description") else [path or "<root>"]
    for key, child in (node.get("properties") or {}).items():
        missing += _undocumented(child, schema, f"{path}.{key}".lstrip("."))
    if isinstance(node.get("additionalProperties"), dict):
        missing += _undocumented(node["additionalProperties"], schema, f"{path}.*")
    return missing


def _unknown(values, node, schema, path=""):
    """Keys of ``values`` the schema does not name (additionalProperties aside)."""
    node = _resolve(node, schema)
    if not isinstance(values, dict):
        return []
    unknown = []
    props = node.get("properties") or {}
    extra = node.get("additionalProperties")
    for key, value in values.items():
        where = f"{path}.{key}".lstrip(".")
        if key in props:
            unknown += _unknown(value, props[key], schema, where)
        elif isinstance(extra, dict):
            unknown += _unknown(value, extra, schema, where)
        elif extra is False or props:
            # a documented object names every key it takes; only free-form objects
            # (like a container's resources) take any key
            unknown.append(where)
    return unknown


def test_every_schema_key_has_a_description():
    schema = _schema()
    assert _undocumented(schema, schema) == []


def test_every_default_value_is_in_the_schema():
    schema = _schema()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert _unknown(values, schema, schema) == []


def test_generated_schema_and_reference_are_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "chart_reference.py"), "--check"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


def test_chart_lints_clean_apart_from_the_unfetched_dependency():
    report = helm_python.lint(CHART, values=FULL_VALUES, strict=True)
    unfetched = "missing these dependencies: jupyterhub"
    errors = [m["error"] for m in report["messages"] if m["severity"] >= 2]
    errors += [e for e in report["errors"]]
    assert [e for e in errors if unfetched not in str(e)] == []


# ---- the values handed to Zero to JupyterHub fit the rendered objects ------------

def test_hub_mounts_exactly_the_secrets_the_chart_renders():
    values = chart_values(MINIMAL)
    hub = values["jupyterhub"]["hub"]
    volumes = {v["name"]: v for v in hub["extraVolumes"]}
    mounts = {m["name"]: m for m in hub["extraVolumeMounts"]}
    assert set(volumes) == set(mounts)
    rendered = set(by_kind(render(FULL_VALUES), "Secret"))
    for volume in volumes.values():
        assert volume["secret"]["secretName"] in rendered
    # the config file reads the Secrets under one directory
    assert {m["mountPath"] for m in mounts.values()} == {
        f"/usr/local/etc/jupyterhub-spaces/{d}" for d in ("values", "database", "oauth")
    }
    assert all(m["readOnly"] for m in mounts.values())


def test_spaces_service_port_is_exposed_and_open_to_the_proxy_only():
    values = chart_values(MINIMAL)
    port = values["spaces"]["service"]["port"]
    hub = values["jupyterhub"]["hub"]
    assert [p["port"] for p in hub["service"]["extraPorts"]] == [port]
    [rule] = hub["networkPolicy"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [port]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"component": "proxy"}}}]
    # the z2jh session policy would add internet egress to sandbox pods
    assert values["jupyterhub"]["singleuser"]["networkPolicy"]["enabled"] is False


def test_a_prometheus_finds_the_spaces_metrics_on_the_hub_pod():
    port = chart_values(MINIMAL)["spaces"]["service"]["port"]
    [service] = by_kind(render(), "Service").values()
    assert service["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/path": "/services/spaces/metrics",
        "prometheus.io/port": str(port),
    }
    hub_pod = {"component": "hub", "release": "hub", "app": "jupyterhub"}
    assert all(hub_pod.get(k) == v for k, v in service["spec"]["selector"].items())
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(port, port)]
    assert by_kind(render({**MINIMAL, "metrics": {"enabled": False}}), "Service") == {}


# ---- network policies --------------------------------------------------------------

def _selects(policy: dict, labels: dict) -> bool:
    selector = policy["spec"]["podSelector"]
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        present = expr["key"] in labels
        if expr["operator"] == "NotIn" and present and labels[expr["key"]] in expr["values"]:
            return False
        if expr["operator"] == "In" and (not present or labels[expr["key"]] not in expr["values"]):
            return False
    return True


SESSION = {"component": "singleuser-server", "release": "hub", "app": "jupyterhub"}


@pytest.mark.parametrize("values", [MINIMAL, FULL_VALUES], ids=["defaults", "production"])
def test_sandbox_pods_reach_dns_hub_and_databases_only(values):
    policies = by_kind(render(values), "NetworkPolicy")
    sandbox_pod = {**SESSION, "spaces.jupyter.org/mode": "sandbox"}
    selecting = [p for p in policies.values() if _selects(p, sandbox_pod)]
    assert [p["metadata"]["name"] for p in selecting] == ["hub-spaces-sandbox"]
    [policy] = selecting
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    peers = [peer for rule in policy["spec"]["egress"] for peer in rule["to"]]
    # no empty rule (which would allow everything) and no address range but the DBs'
    assert all(rule.get("to") for rule in policy["spec"]["egress"])
    dbs = values.get("networkPolicy", {}).get("databases", [])
    ip_peers = [p for p in peers if "ipBlock" in p]
    assert ip_peers == [p for p in dbs if "ipBlock" in p]
    kinds = []
    for rule in policy["spec"]["egress"]:
        ports = {p["port"] for p in rule["ports"]}
        if ports == {53}:
            kinds.append("dns")
        elif rule["to"] == [{"podSelector": {"matchLabels": {"component": "hub",
                                                             "release": "hub"}}}]:
            assert ports == {8081}
            kinds.append("hub")
        else:
            assert ports == {5432}
            kinds.append("databases")
    assert kinds == ["dns", "hub"] + (["databases"] if dbs else [])


def test_workbench_pods_get_the_other_policy_with_internet_egress():
    policies = by_kind(render(), "NetworkPolicy")
    for labels in (SESSION, {**SESSION, "spaces.jupyter.org/mode": "workbench"}):
        selecting = [p["metadata"]["name"] for p in policies.values() if _selects(p, labels)]
        assert selecting == ["hub-spaces-workbench"]
    egress = policies["hub-spaces-workbench"]["spec"]["egress"]
    blocks = [peer["ipBlock"] for rule in egress for peer in rule["to"] if "ipBlock" in peer]
    assert blocks and "169.254.169.254/32" in blocks[0]["except"]


def test_network_policies_can_be_turned_off():
    assert by_kind(render({**MINIMAL, "networkPolicy": {"enabled": False}}),
                   "NetworkPolicy") == {}


# ---- values reach the traits through the one config file ---------------------------

def load_config(values: dict, tmp_path: Path, monkeypatch):
    """Lay the hub pod's files out as a `helm install` would (``z2jh_pod.py``) and
    load the chart's config file as a plain ``jupyterhub -f`` file."""
    from traitlets.config.loader import PyFileConfigLoader

    pod = HubPod(tmp_path, values, release="hub", namespace="spaces").lay_out()
    for key, value in pod.env().items():
        monkeypatch.setenv(key, value)
    config_d = pod.etc / "jupyterhub_config.d"
    return PyFileConfigLoader("spaces.py", path=str(config_d)).load_config(), pod


def test_values_map_onto_traits(tmp_path, monkeypatch):
    config, pod = load_config(FULL_VALUES, tmp_path, monkeypatch)
    values = chart_values(FULL_VALUES)
    assert config.SpacesSettings.db_url == FULL_VALUES["database"]["catalogUrl"]
    assert config.SpacesSettings.source_db_url == FULL_VALUES["database"]["sourceUrl"]
    assert config.SpacesSettings.machine_profiles == values["spaces"]["profiles"]
    assert config.SpacesSettings.space_limit == 15
    assert config.SpaceDatabases.backend == "postgresql"
    assert config.SpaceDatabases.admin_url == FULL_VALUES["database"]["adminUrl"]
    assert config.KubeSpaceSpawner.assets_volume == {
        "persistentVolumeClaim": {"claimName": "product-files"}}
    # neither the assets nor the shared claim may ever be deleted with a space
    assert config.KubeSpaceSpawner.protected_claims == ["product-files", "space-shared"]
    hub = {"podSelector": {"matchLabels": {"component": "hub", "release": "hub"}}}
    assert config.KubeSpaceSpawner.sandbox_egress_to == [
        hub, {"ipBlock": {"cidr": "10.20.0.5/32"}}]
    assert hub in config.KubeSpaceSpawner.sandbox_ingress_from
    assert config.KubeSpaceSpawner.guacd_image == "guacamole/guacd:1.5.5"
    assert config.KubeSpaceSpawner.guacd_resources["limits"]["memory"] == "512Mi"
    # tools.rstudio.enabled: false
    assert config.KubeSpaceSpawner.offered_tools == ["jupyterlab", "superset", "sqllab"]
    assert config.SandboxSettings.guacd_host == "127.0.0.1"
    assert config.JupyterHub.authenticator_class == "spaces-oauth"
    assert config.SpacesOAuthenticator.client_secret == "s3cret"
    assert config.SpacesOAuthenticator.allowed_organizations == {"acme"}
    # appended, so that services set in the Zero to JupyterHub values stay
    [service] = config.JupyterHub.services.get_value([])
    assert service["url"] == "http://hub:10101"
    # the service reads the settings file of the image, never the hub's config
    assert f"--config={pod.spaces_etc / 'spaces_config.py'}" in service["command"]
    assert config.KubeSpaceSpawner.image == "jupyterhub-spaces/workbench:0.1.0"
    assert config.KubeSpaceSpawner.sandbox_image == "jupyterhub-spaces/sandbox:0.1.0"
    assert config.SpaceDatabases.role_prefix == "spaces_"


def test_mapped_settings_pass_the_traits_own_validation(tmp_path, monkeypatch):
    from jupyterhub_spaces.settings import SpacesSettings

    config, _pod = load_config(FULL_VALUES, tmp_path, monkeypatch)
    settings = SpacesSettings(config=config)
    assert settings.default_profile == "small"
    assert set(settings.machine_profiles) == {"small", "medium"}


def test_every_mapped_trait_exists(tmp_path, monkeypatch):
    """A trait renamed on its class must not leave a silently ignored setting here."""
    from jupyterhub.app import JupyterHub

    from jupyterhub_spaces.auth import SpacesOAuthenticator
    from jupyterhub_spaces.databases.config import SpaceDatabases
    from jupyterhub_spaces.sandbox.config import SandboxSettings
    from jupyterhub_spaces.settings import SpacesSettings
    spawner = pytest.importorskip("jupyterhub_spaces.spawner")
    if not hasattr(spawner, "KubeSpaceSpawner"):
        pytest.skip("KubeSpaceSpawner is not written yet")
    KubeSpaceSpawner = spawner.KubeSpaceSpawner

    classes = {cls.__name__: cls for cls in (JupyterHub, SpacesOAuthenticator, SpaceDatabases,
                                            SandboxSettings, SpacesSettings, KubeSpaceSpawner)}
    config, _pod = load_config(FULL_VALUES, tmp_path, monkeypatch)
    unknown = [f"{section}.{name}" for section, traits in config.items()
               for name in traits if name not in classes[section].class_trait_names(config=True)]
    assert unknown == []


def test_hub_image_is_built_on_the_chart_dependency_release():
    """The hub image extends the Zero to JupyterHub hub image of the same release as
    the chart dependency: its config loader is the one that chart mounts."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    [dependency] = [d for d in chart["dependencies"] if d["name"] == "jupyterhub"]
    dockerfile = (ROOT / "images" / "hub" / "Dockerfile").read_text()
    assert f"ARG HUB_BASE=quay.io/jupyterhub/k8s-hub:{dependency['version']}\n" in dockerfile
    assert dependency["condition"] == "jupyterhub.enabled"
