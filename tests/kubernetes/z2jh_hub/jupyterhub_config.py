"""Stand-in for Zero to JupyterHub's hub ``jupyterhub_config.py``, written for these
tests from reading that chart's 4.2.0 source (``jupyterhub/files/hub/``); not a copy.

It keeps what matters to a chart that extends the hub, in the same order:

1. it is loaded by ``jupyterhub --config``, so traitlets gives it ``c``,
   ``load_subconfig`` and ``get_config``; then it imports ``get_config`` and
   ``set_config_if_not_none`` from ``z2jh`` (its own directory is put on
   ``sys.path``), which replaces traitlets' ``get_config`` in this namespace;
2. it maps the chart's values onto JupyterHub and KubeSpawner traits, among them the
   default home volume from ``singleuser.storage`` (a claim per server mounted at
   ``homeMountPath``), and it *assigns* ``c.JupyterHub.services`` and
   ``c.JupyterHub.load_roles`` (fresh lists) before adding the culler and the
   ``hub.services`` / ``hub.loadRoles`` entries;
3. it loads the secrets of the hub Secret, then ``hub.config`` (``c[app].update``);
4. it runs every ``*.py`` of ``jupyterhub_config.d`` (sorted) and then every
   ``hub.extraConfig`` snippet (sorted by key) with a bare ``exec``: they run in
   *this* module's namespace, where ``get_config`` is z2jh's, ``__file__`` is this
   file and ``c`` is this file's config.

Where a pod would use cluster networking this stand-in reads the addresses from the
environment variables Kubernetes sets for Services (``HUB_SERVICE_HOST`` ...), so the
test's processes on loopback ports play the hub Service and the proxy pod.
"""

import glob
import os
import re
import sys

from jupyterhub.utils import url_path_join
from kubernetes_asyncio import client

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from z2jh import get_config, get_name, get_name_env, get_secret_value, set_config_if_not_none  # noqa: E402


def camel(name):
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"

# the proxy runs in a pod of its own
c.ConfigurableHTTPProxy.api_url = (
    f"http://{get_name_env('proxy-api', '_SERVICE_HOST')}:"
    f"{get_name_env('proxy-api', '_SERVICE_PORT')}"
)
c.ConfigurableHTTPProxy.should_start = False
c.JupyterHub.cleanup_servers = False
c.JupyterHub.last_activity_interval = 60
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}

db_type = get_config("hub.db.type")
if db_type == "sqlite-pvc":
    c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
elif db_type == "sqlite-memory":
    c.JupyterHub.db_url = "sqlite://"
else:
    set_config_if_not_none(c.JupyterHub, "db_url", "hub.db.url")

for trait in ("concurrent_spawn_limit", "active_server_limit", "base_url",
              "allow_named_servers", "named_server_limit_per_user",
              "authenticate_prometheus", "redirect_to_server", "shutdown_on_logout",
              "template_paths", "template_vars"):
    set_config_if_not_none(c.JupyterHub, trait, "hub." + camel(trait))

# the pod listens on every interface; here, on loopback at the hub Service's port
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{get_name_env('hub', '_SERVICE_PORT')}"
c.JupyterHub.hub_connect_url = (
    f"http://{get_name_env('hub', '_SERVICE_HOST')}:{get_name_env('hub', '_SERVICE_PORT')}"
)

common_labels = c.KubeSpawner.common_labels = {}
common_labels["app"] = get_config("nameOverride", default=get_config("Chart.Name", "jupyterhub"))
common_labels["heritage"] = "jupyterhub"
if get_config("Chart.Name") and get_config("Chart.Version"):
    common_labels["chart"] = f"{get_config('Chart.Name')}-{get_config('Chart.Version')}"
if get_config("Release.Name"):
    common_labels["release"] = get_config("Release.Name")
c.KubeSpawner.namespace = os.environ.get("POD_NAMESPACE", "default")

set_config_if_not_none(c.Spawner, "consecutive_failure_limit", "hub.consecutiveFailureLimit")
for trait, key in (
    ("pod_name_template", None), ("start_timeout", None),
    ("image_pull_policy", "image.pullPolicy"), ("events_enabled", "events"),
    ("extra_labels", None), ("extra_annotations", None), ("uid", None), ("fs_gid", None),
    ("service_account", "serviceAccountName"), ("storage_extra_labels", "storage.extraLabels"),
    ("node_selector", None), ("lifecycle_hooks", None), ("init_containers", None),
    ("extra_containers", None), ("mem_limit", "memory.limit"),
    ("mem_guarantee", "memory.guarantee"), ("cpu_limit", "cpu.limit"),
    ("cpu_guarantee", "cpu.guarantee"), ("environment", "extraEnv"),
    ("profile_list", None), ("extra_pod_config", None),
):
    set_config_if_not_none(c.KubeSpawner, trait, "singleuser." + (key or camel(trait)))

image = get_config("singleuser.image.name")
if image:
    tag = get_config("singleuser.image.tag")
    c.KubeSpawner.image = f"{image}:{tag}" if tag else image
c.KubeSpawner.allow_privilege_escalation = get_config("singleuser.allowPrivilegeEscalation")
if get_config("scheduling.userScheduler.enabled"):
    c.KubeSpawner.scheduler_name = get_name("user-scheduler")
if get_config("scheduling.podPriority.enabled"):
    c.KubeSpawner.priority_class_name = get_name("priority")
purpose = get_config("scheduling.userPods.nodeAffinity.matchNodePurpose")
user_nodes = {"matchExpressions": [
    {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}]}
if purpose == "prefer":
    c.KubeSpawner.node_affinity_preferred.append({"weight": 100, "preference": user_nodes})
elif purpose == "require":
    c.KubeSpawner.node_affinity_required.append(user_nodes)
tolerations = get_config("scheduling.userPods.tolerations", []) + get_config(
    "singleuser.extraTolerations", [])
if tolerations:
    c.KubeSpawner.tolerations = tolerations

# the default home: one claim per server, at homeMountPath
storage_type = get_config("singleuser.storage.type")
if storage_type == "dynamic":
    if get_config("singleuser.storage.dynamic.pvcNameTemplate"):
        c.KubeSpawner.pvc_name_template = get_config("singleuser.storage.dynamic.pvcNameTemplate")
    volume_name = get_config("singleuser.storage.dynamic.volumeNameTemplate")
    c.KubeSpawner.storage_pvc_ensure = True
    set_config_if_not_none(c.KubeSpawner, "storage_class", "singleuser.storage.dynamic.storageClass")
    set_config_if_not_none(c.KubeSpawner, "storage_access_modes",
                           "singleuser.storage.dynamic.storageAccessModes")
    set_config_if_not_none(c.KubeSpawner, "storage_capacity", "singleuser.storage.capacity")
    c.KubeSpawner.volumes = [
        {"name": volume_name, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
    c.KubeSpawner.volume_mounts = [{
        "mountPath": get_config("singleuser.storage.homeMountPath"),
        "name": volume_name,
        "subPath": get_config("singleuser.storage.dynamic.subPath"),
    }]
elif storage_type == "static":
    c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {
        "claimName": get_config("singleuser.storage.static.pvcName")}}]
    c.KubeSpawner.volume_mounts = [{
        "mountPath": get_config("singleuser.storage.homeMountPath"), "name": "home",
        "subPath": get_config("singleuser.storage.static.subPath")}]
c.KubeSpawner.volumes.extend(get_config("singleuser.storage.extraVolumes", []))
c.KubeSpawner.volume_mounts.extend(get_config("singleuser.storage.extraVolumeMounts", []))

c.JupyterHub.services = []
c.JupyterHub.load_roles = []
if get_config("cull.enabled", False):
    cull = ["python3", "-m", "jupyterhub_idle_culler",
            "--url=http://localhost:8081" + url_path_join(c.JupyterHub.get("base_url", "/"),
                                                          "hub/api")]
    if get_config("cull.timeout"):
        cull.append(f"--timeout={get_config('cull.timeout')}")
    if get_config("cull.every"):
        cull.append(f"--cull-every={get_config('cull.every')}")
    if get_config("cull.removeNamedServers"):
        cull.append("--remove-named-servers")
    c.JupyterHub.services.append({"name": "jupyterhub-idle-culler", "command": cull})
    c.JupyterHub.load_roles.append({
        "name": "jupyterhub-idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["jupyterhub-idle-culler"],
    })
for name, service in get_config("hub.services", {}).items():
    service.setdefault("name", name)
    service.pop("apiToken", None)
    service["api_token"] = get_secret_value(f"hub.services.{name}.apiToken")
    c.JupyterHub.services.append(service)
for name, role in get_config("hub.loadRoles", {}).items():
    role.setdefault("name", name)
    c.JupyterHub.load_roles.append(role)

_unset = object()
if get_config("singleuser.cmd", _unset) is not _unset:
    c.Spawner.cmd = get_config("singleuser.cmd")
set_config_if_not_none(c.Spawner, "default_url", "singleuser.defaultUrl")

metadata = get_config("singleuser.cloudMetadata", {})
if metadata.get("blockWithIptables") is True:
    c.KubeSpawner.init_containers.append(client.V1Container(
        name="block-cloud-metadata",
        image=f"{get_config('singleuser.networkTools.image.name')}:"
              f"{get_config('singleuser.networkTools.image.tag')}",
        command=["iptables", "-A", "OUTPUT", "-d", metadata.get("ip", "169.254.169.254"),
                 "-j", "DROP"],
        security_context=client.V1SecurityContext(
            privileged=True, run_as_user=0, capabilities=client.V1Capabilities(add=["NET_ADMIN"])),
    ))

if get_config("debug.enabled", False):
    c.JupyterHub.log_level = "DEBUG"
    c.Spawner.debug = True

c.JupyterHub.cookie_secret = get_secret_value("hub.config.JupyterHub.cookie_secret")
c.CryptKeeper.keys = get_secret_value("hub.config.CryptKeeper.keys").split(";")

for app, section in get_config("hub.config", {}).items():
    for secret_key in {"JupyterHub": ("proxy_auth_token", "cookie_secret", "services"),
                       "ConfigurableHTTPProxy": ("auth_token",),
                       "CryptKeeper": ("keys",)}.get(app, ()):
        section.pop(secret_key, None)
    c[app].update(section)

config_dir = os.path.join(os.path.dirname(os.path.realpath(__file__)), "jupyterhub_config.d")
if os.path.isdir(config_dir):
    for file_path in sorted(glob.glob(f"{config_dir}/*.py")):
        print(f"Loading {config_dir} config: {os.path.basename(file_path)}")
        with open(file_path) as f:
            exec(compile(f.read(), os.path.basename(file_path), "exec"))

for key, snippet in sorted(get_config("hub.extraConfig", {}).items()):
    print(f"Loading extra config: {key}")
    exec(snippet)
