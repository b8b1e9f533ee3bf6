"""A small test kubelet: pods on a real API server become local processes.

It registers one fake Ready node, binds pending pods to it (standing in for the
scheduler: a pod whose ``nodeSelector`` does not match the node's labels stays
Pending, as it would on a real cluster), and runs each container's command as a
local process with the pod's environment. Every pod gets its own loopback address
(127.x.y.z); ``0.0.0.0`` in a container's arguments or environment becomes that
address, the way a pod's wildcard bind stays inside its own network namespace.
Pod status is patched as a kubelet would (Running, podIP, Ready conditions,
container states). Deleting the pod stops its processes and finishes the deletion.

What it cannot do here: pull images, mount volumes, enforce resources or network
policy. Each volume mount becomes an empty directory under the pod's directory, and
arguments and environment values naming a mount path are rewritten to it. A container whose program is not installed on this machine runs a stand-in
given with ``--stand-in IMAGE=COMMAND``, or else an idle placeholder process, and
the log says so.

Run: ``python kubelet.py --kubeconfig PATH [--node NAME] [--root DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import random
import re
import shlex
import shutil
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

log = logging.getLogger("test-kubelet")

MERGE_PATCH = "application/merge-patch+json"
IDLE = [sys.executable, "-c", "import signal; signal.pause()"]
# Environment a container inherits from "the image": enough to find programs.
BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "SSL_CERT_FILE")


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class AddressPool:
    """Loopback addresses handed to pods, from a random /16 so runs do not collide."""

    def __init__(self):
        self.prefix = f"127.{random.randint(100, 250)}"
        self.free = [f"{self.prefix}.{b}.{c}" for b in range(1, 4) for c in range(2, 255)]
        random.shuffle(self.free)

    def take(self) -> str:
        return self.free.pop()

    def give(self, address: str) -> None:
        self.free.append(address)


@dataclass
class PodRun:
    """The local processes standing for one pod."""

    uid: str
    namespace: str
    name: str
    ip: str
    grace: int
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)
    started_at: str = field(default_factory=now)
    stopping: bool = False


def mount_remapper(container: dict, root: Path):
    """A function moving a container's mount paths under ``root`` in a string.

    Volumes cannot be mounted here: each mountPath becomes an empty directory under
    the pod's directory, and arguments and environment values naming a mount path
    (or a path inside one) are rewritten to point there.
    """
    paths = sorted({m["mountPath"].rstrip("/") for m in container.get("volumeMounts") or []
                    if m.get("mountPath", "").startswith("/")}, key=len, reverse=True)
    for path in paths:
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    if not paths:
        return lambda value: value
    pattern = re.compile(r"(?<![\w/.-])(" + "|".join(map(re.escape, paths)) + r")(?=/|$|[^\w.-])")
    return lambda value: pattern.sub(lambda m: str(root) + m.group(1), value)


def selector_matches(pod: dict, labels: dict[str, str]) -> bool:
    """Whether the pod's nodeSelector and required node affinity allow our node."""
    spec = pod.get("spec") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not affinity:
        return True
    for term in affinity.get("nodeSelectorTerms") or []:
        if all(_expression_matches(e, labels) for e in term.get("matchExpressions") or []):
            return True
    return False


def _expression_matches(expr: dict, labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


class Kubelet:
    """Watches pods on the API server and runs the ones bound to its node."""

    def __init__(self, api: client.ApiClient, node: str, root: Path,
                 stand_ins: dict[str, list[str]], labels: dict[str, str],
                 schedulers: tuple[str, ...] = ("default-scheduler",)):
        self.api = api
        self.schedulers = set(schedulers)
        self.core = client.CoreV1Api(api)
        self.node = node
        self.root = root
        self.stand_ins = stand_ins
        self.labels = {
            "kubernetes.io/hostname": node,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            **labels,
        }
        self.addresses = AddressPool()
        self.runs: dict[str, PodRun] = {}
        self.tasks: set[asyncio.Task] = set()

    # ---- node -------------------------------------------------------------
    async def register_node(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node, "labels": self.labels},
        }
        try:
            await self.core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            await self.core.patch_node(self.node, {"metadata": {"labels": self.labels}},
                                       _content_type=MERGE_PATCH)
        await self.heartbeat()
        log.info("node %s registered and Ready", self.node)

    async def heartbeat(self) -> None:
        stamp = now()
        resources = {"cpu": "64", "memory": "256Gi", "pods": "250", "ephemeral-storage": "500Gi"}
        status = {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node},
            ],
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady",
                 "message": "test kubelet is posting ready status",
                 "lastHeartbeatTime": stamp, "lastTransitionTime": stamp},
            ],
            "nodeInfo": {
                "machineID": "spaces-test", "systemUUID": "spaces-test", "bootID": "spaces-test",
                "kernelVersion": os.uname().release, "osImage": "test kubelet",
                "containerRuntimeVersion": "local-process://0", "kubeletVersion": "v1.20.2",
                "kubeProxyVersion": "v1.20.2", "operatingSystem": "linux", "architecture": "amd64",
            },
        }
        await self.core.patch_node_status(self.node, {"status": status},
                                          _content_type=MERGE_PATCH)

    async def heartbeats(self) -> None:
        while True:
            await asyncio.sleep(20)
            try:
                await self.heartbeat()
            except Exception:
                log.exception("node heartbeat failed")

    # ---- pods -------------------------------------------------------------
    async def run(self) -> None:
        """Resync then follow the pod watch until cancelled."""
        self.spawn(self.heartbeats())
        while True:
            listing = await self.core.list_pod_for_all_namespaces(_preload_content=False)
            data = await listing.json()
            for pod in data.get("items", []):
                await self.handle("ADDED", pod)
            version = data["metadata"]["resourceVersion"]
            try:
                async with watch.Watch() as w:
                    async for event in w.stream(
                        self.core.list_pod_for_all_namespaces,
                        resource_version=version,
                        timeout_seconds=300,
                        _preload_content=False,
                    ):
                        await self.handle(event["type"], event["raw_object"])
            except ApiException as exc:
                if exc.status != 410:  # 410: history expired, list again
                    raise
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod watch broke; listing again")
                await asyncio.sleep(1)

    async def handle(self, kind: str, pod: dict) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        uid = meta["uid"]
        if kind == "DELETED":
            run = self.runs.get(uid)
            if run:
                self.spawn(self.stop(run, finish=False))
            return
        if meta.get("deletionTimestamp"):
            run = self.runs.get(uid)
            if run and not run.stopping:
                self.spawn(self.stop(run, finish=True))
            elif not run and spec.get("nodeName") == self.node:
                self.spawn(self.finish_delete(meta))
            return
        node = spec.get("nodeName")
        if not node:
            if spec.get("schedulerName", "default-scheduler") not in self.schedulers:
                return
            if selector_matches(pod, self.labels):
                await self.bind(meta)
            return
        phase = (pod.get("status") or {}).get("phase")
        if node == self.node and uid not in self.runs and phase in (None, "Pending"):
            run = PodRun(uid=uid, namespace=meta["namespace"], name=meta["name"],
                         ip=self.addresses.take(),
                         grace=int(spec.get("terminationGracePeriodSeconds") or 30))
            self.runs[uid] = run
            self.spawn(self.start(run, pod))

    async def bind(self, meta: dict) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
        }
        try:
            # the generated client cannot parse a Binding reply: keep it raw
            reply = await self.core.create_namespaced_binding(meta["namespace"], body,
                                                              _preload_content=False)
            reply.release()
            log.info("bound %s/%s to %s", meta["namespace"], meta["name"], self.node)
        except ApiException as exc:
            if exc.status != 409:  # already bound by an earlier event
                log.warning("binding %s failed: %s", meta["name"], exc.reason)

    async def start(self, run: PodRun, pod: dict) -> None:
        spec = pod["spec"]
        pod_dir = self.root / run.namespace / run.name
        pod_dir.mkdir(parents=True, exist_ok=True)
        try:
            for container in spec.get("initContainers") or []:
                log.info("%s: init container %s is not run here", run.name, container["name"])
            for container in spec["containers"]:
                remap = mount_remapper(container, pod_dir / "mounts")
                env = await self.container_env(run, pod, container, pod_dir)
                env = {k: remap(v) for k, v in env.items()}
                argv = [remap(a) for a in self.container_argv(run, container, env["PATH"])]
                workdir = pod_dir
                out = open(pod_dir / f"{container['name']}.log", "ab")
                proc = await asyncio.create_subprocess_exec(
                    *argv, env=env, cwd=str(workdir), stdout=out, stderr=out,
                    stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
                )
                out.close()
                run.processes[container["name"]] = proc
                log.info("%s/%s: container %s runs pid %s on %s: %s", run.namespace,
                         run.name, container["name"], proc.pid, run.ip, shlex.join(argv))
                self.spawn(self.watch_process(run, pod, container["name"], proc))
            await self.patch_status(run, pod)
        except Exception as exc:
            log.exception("starting %s failed", run.name)
            await self.patch_failed(run, f"test kubelet could not start the pod: {exc}")

    def container_argv(self, run: PodRun, container: dict, path: str) -> list[str]:
        # An image's entrypoint is not known here; images in this project use an init
        # (tini) that execs the arguments, so command, else args, is the program.
        argv = list(container.get("command") or []) + list(container.get("args") or [])
        argv = [a.replace("0.0.0.0", run.ip) for a in argv]
        image = container.get("image", "")
        stand_in = self.stand_ins.get(image) or self.stand_ins.get(image.split(":")[0])
        if stand_in:
            log.info("%s: container %s (%s) runs its stand-in", run.name, container["name"], image)
            return [a.replace("0.0.0.0", run.ip) for a in stand_in]
        if argv and shutil.which(argv[0], path=path):
            return argv
        log.warning("%s: container %s (%s) has no runnable program here (%s): "
                    "an idle placeholder stands for it", run.name, container["name"], image,
                    argv[0] if argv else "image entrypoint")
        return IDLE

    async def container_env(self, run: PodRun, pod: dict, container: dict,
                            pod_dir: Path) -> dict[str, str]:
        env = {k: os.environ[k] for k in BASE_ENV_KEYS if k in os.environ}
        # "the image" is this machine's Python environment: its programs come first,
        # as /opt/spaces/bin does in the project's images
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable),
                                       env.get("PATH", os.defpath)])
        env["HOSTNAME"] = run.name
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "secretRef" in source:
                data = await self.secret_data(run.namespace, source["secretRef"]["name"])
            elif "configMapRef" in source:
                data = await self.config_map_data(run.namespace, source["configMapRef"]["name"])
            else:
                continue
            env.update({prefix + k: v for k, v in data.items()})
        for item in container.get("env") or []:
            env[item["name"]] = await self.env_value(run, pod, item)
        env = {k: v.replace("0.0.0.0", run.ip) for k, v in env.items()}
        # There is no image filesystem: the pod's directory is its home.
        env["HOME"] = str(pod_dir)
        return env

    async def env_value(self, run: PodRun, pod: dict, item: dict) -> str:
        if "value" in item:
            return str(item["value"])
        ref = item.get("valueFrom") or {}
        if "secretKeyRef" in ref:
            data = await self.secret_data(run.namespace, ref["secretKeyRef"]["name"])
            return data.get(ref["secretKeyRef"]["key"], "")
        if "configMapKeyRef" in ref:
            data = await self.config_map_data(run.namespace, ref["configMapKeyRef"]["name"])
            return data.get(ref["configMapKeyRef"]["key"], "")
        if "fieldRef" in ref:
            path = ref["fieldRef"]["fieldPath"]
            fields = {
                "metadata.name": run.name,
                "metadata.namespace": run.namespace,
                "metadata.uid": run.uid,
                "status.podIP": run.ip,
                "status.hostIP": "127.0.0.1",
                "spec.nodeName": self.node,
                "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
            }
            return fields.get(path, "")
        return ""

    async def secret_data(self, namespace: str, name: str) -> dict[str, str]:
        secret = await self.core.read_namespaced_secret(name, namespace)
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    async def config_map_data(self, namespace: str, name: str) -> dict[str, str]:
        cm = await self.core.read_namespaced_config_map(name, namespace)
        return dict(cm.data or {})

    def container_statuses(self, run: PodRun, pod: dict) -> list[dict]:
        statuses = []
        for container in pod["spec"]["containers"]:
            name = container["name"]
            code = run.exits.get(name)
            if code is None:
                state = {"running": {"startedAt": run.started_at}}
            else:
                state = {"terminated": {"exitCode": code, "startedAt": run.started_at,
                                        "finishedAt": now(),
                                        "reason": "Completed" if code == 0 else "Error"}}
            statuses.append({
                "name": name,
                "image": container.get("image", ""),
                "imageID": "",
                "ready": code is None,
                "started": code is None,
                "restartCount": 0,
                "state": state,
            })
        return statuses

    async def patch_status(self, run: PodRun, pod: dict) -> None:
        statuses = self.container_statuses(run, pod)
        all_ready = all(s["ready"] for s in statuses)
        exited = [s for s in statuses if "terminated" in s["state"]]
        if len(exited) == len(statuses):
            failed = any(s["state"]["terminated"]["exitCode"] for s in exited)
            phase = "Failed" if failed else "Succeeded"
        else:
            phase = "Running"
        ready = "True" if all_ready and phase == "Running" else "False"
        stamp = now()
        status = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": run.ip,
            "podIPs": [{"ip": run.ip}],
            "startTime": run.started_at,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
                {"type": "Ready", "status": ready, "lastTransitionTime": stamp},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": stamp},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
            ],
            "containerStatuses": statuses,
        }
        try:
            await self.core.patch_namespaced_pod_status(
                run.name, run.namespace, {"status": status}, _content_type=MERGE_PATCH)
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def patch_failed(self, run: PodRun, message: str) -> None:
        try:
            await self.core.patch_namespaced_pod_status(
                run.name, run.namespace,
                {"status": {"phase": "Failed", "reason": "TestKubeletError", "message": message}},
                _content_type=MERGE_PATCH)
        except ApiException:
            log.exception("could not mark %s failed", run.name)

    async def watch_process(self, run: PodRun, pod: dict, name: str,
                            proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        run.exits[name] = code
        if run.stopping:
            return
        log.info("%s: container %s exited with %s", run.name, name, code)
        await self.patch_status(run, pod)

    async def stop(self, run: PodRun, finish: bool) -> None:
        """Stop a pod's processes (TERM, then KILL after its grace period)."""
        run.stopping = True
        for proc in run.processes.values():
            if proc.returncode is None:
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = min(run.grace, 10)
        for proc in run.processes.values():
            try:
                await asyncio.wait_for(proc.wait(), deadline)
            except asyncio.TimeoutError:
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        log.info("%s/%s: processes stopped", run.namespace, run.name)
        self.runs.pop(run.uid, None)
        self.addresses.give(run.ip)
        if finish:
            await self.finish_delete({"name": run.name, "namespace": run.namespace,
                                      "uid": run.uid})

    async def finish_delete(self, meta: dict) -> None:
        # A bound pod stays Terminating until its kubelet confirms: do it.
        try:
            await self.core.delete_namespaced_pod(
                meta["name"], meta["namespace"],
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                grace_period_seconds=0,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception():
            log.error("task failed", exc_info=task.exception())

    async def shutdown(self) -> None:
        for run in list(self.runs.values()):
            for proc in run.processes.values():
                if proc.returncode is None:
                    _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", default="spaces-test-node")
    parser.add_argument("--root", default="kubelet-pods", help="directory for pod files")
    parser.add_argument("--label", action="append", default=[], help="node label KEY=VALUE")
    parser.add_argument("--stand-in", action="append", default=[],
                        help="IMAGE=COMMAND run for containers of IMAGE")
    parser.add_argument("--scheduler", action="append", default=["default-scheduler"],
                        help="also bind pods that name this schedulerName (a scheduler "
                        "the test cluster does not run)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stand_ins = {}
    for item in args.stand_in:
        image, _, command = item.partition("=")
        stand_ins[image] = shlex.split(command)
    labels = dict(item.split("=", 1) for item in args.label)
    await config.load_kube_config(config_file=args.kubeconfig)
    async with client.ApiClient() as api:
        kubelet = Kubelet(api, args.node, Path(args.root).resolve(), stand_ins, labels,
                          tuple(args.scheduler))
        await kubelet.register_node()
        loop = asyncio.get_running_loop()
        runner = asyncio.ensure_future(kubelet.run())
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.cancel)
        try:
            await runner
        except asyncio.CancelledError:
            pass
        finally:
            await kubelet.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
