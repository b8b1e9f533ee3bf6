"""A throwaway Kubernetes control plane for tests: etcd plus a real kube-apiserver.

The API server is v1.20.2 built from Debian's ``kubernetes`` source package by
``scripts/setup.d/60-kube-apiserver.sh``; etcd comes from Debian's ``etcd-server``.
Both listen on random localhost ports and keep their state in a temporary directory,
so several test runs can share a machine. Clients authenticate with a static bearer
token of a ``system:masters`` user, written to a kubeconfig file.

No controller manager and no scheduler run: the test kubelet (``kubelet.py``) binds
pods itself. The ServiceAccount admission plugin is off because nothing would create
the ``default`` service accounts and their tokens.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

KUBE_VERSION = "v1.20.2"
SETUP_SCRIPT = "scripts/setup.d/60-kube-apiserver.sh"


def cache_dir() -> Path:
    """Where the setup script caches the kube-apiserver binary."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "jupyterhub-spaces" / "kube"


def apiserver_binary() -> Path:
    """Path of the cached kube-apiserver binary (it may not exist yet)."""
    override = os.environ.get("SPACES_KUBE_APISERVER")
    if override:
        return Path(override)
    return cache_dir() / f"kube-apiserver-{KUBE_VERSION}"


def missing_binaries() -> list[str]:
    """What is missing to run the control plane, each with the way to get it."""
    missing = []
    if not os.access(apiserver_binary(), os.X_OK):
        missing.append(f"kube-apiserver {KUBE_VERSION} (build it with `{SETUP_SCRIPT} test`)")
    if not shutil.which("etcd"):
        missing.append("etcd (apt-get install etcd-server)")
    return missing


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _service_account_key(path: Path) -> None:
    # kube-apiserver 1.20 refuses to start without a service account signing key.
    subprocess.run(
        ["openssl", "genrsa", "-out", str(path), "2048"],
        check=True,
        capture_output=True,
    )


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver pair; ``stop()`` ends both."""

    workdir: Path
    server: str = ""
    token: str = ""
    kubeconfig: Path = field(default_factory=Path)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, timeout: float = 90) -> ControlPlane:
        """Start etcd and the API server and wait until the API server is ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        etcd_client, etcd_peer = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_client}"
        self._spawn(
            [
                shutil.which("etcd") or "etcd",
                "--name=spaces-test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=spaces-test=http://127.0.0.1:{etcd_peer}",
                "--log-level=warn",
                # the test cluster is small and short-lived: no need for big quotas
                "--quota-backend-bytes=268435456",
            ],
            logs / "etcd.log",
        )

        self.token = secrets.token_hex(16)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.token},spaces-admin,spaces-admin,"system:masters"\n')
        key = self.workdir / "sa.key"
        _service_account_key(key)
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        self._spawn(
            [
                str(apiserver_binary()),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'certs'}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={key}",
                f"--service-account-signing-key-file={key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--api-audiences=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
            ],
            logs / "kube-apiserver.log",
        )
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(self.kubeconfig_text())
        self._wait_ready(timeout)
        return self

    def kubeconfig_text(self) -> str:
        """A kubeconfig naming this API server and the admin token."""
        return (
            "apiVersion: v1\n"
            "kind: Config\n"
            "clusters:\n"
            "- name: spaces-test\n"
            "  cluster:\n"
            f"    server: {self.server}\n"
            # the API server made its own self-signed serving certificate
            "    insecure-skip-tls-verify: true\n"
            "users:\n"
            "- name: spaces-admin\n"
            "  user:\n"
            f"    token: {self.token}\n"
            "contexts:\n"
            "- name: spaces-test\n"
            "  context:\n"
            "    cluster: spaces-test\n"
            "    user: spaces-admin\n"
            "    namespace: default\n"
            "current-context: spaces-test\n"
        )

    def _spawn(self, cmd: list[str], log: Path) -> None:
        out = open(log, "ab")
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self.processes.append(proc)

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for proc in self.processes:
                if proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        f"{proc.args[0]} exited with {proc.returncode}; see {self.workdir}/logs"
                        f"\n{self.log_tail()}"
                    )
            request = urllib.request.Request(
                f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.token}"}
            )
            try:
                with urllib.request.urlopen(request, context=context, timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"kube-apiserver not ready after {timeout}s ({last})\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of every log, to explain a failure."""
        out = []
        for log in sorted((self.workdir / "logs").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop the API server first, then etcd."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()


def start_kubelet(kubeconfig: Path, workdir: Path, node: str = "spaces-test-node",
                  stand_ins: dict[str, str] | None = None,
                  schedulers: tuple[str, ...] = ()) -> subprocess.Popen:
    """Run the test kubelet (``kubelet.py``) as a separate process; it binds pods of
    the default scheduler and of ``schedulers``."""
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("kubelet.py")),
        f"--kubeconfig={kubeconfig}",
        f"--node={node}",
        f"--root={workdir}",
    ]
    for image, command in (stand_ins or {}).items():
        cmd.append(f"--stand-in={image}={command}")
    for name in schedulers:
        cmd.append(f"--scheduler={name}")
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "kubelet.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    return proc
