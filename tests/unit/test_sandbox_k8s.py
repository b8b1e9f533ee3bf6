"""The sandbox's Kubernetes pieces (in :mod:`jupyterhub_spaces.objects`): the guacd
sidecar and the NetworkPolicy, validated against the Kubernetes schemas offline."""

import kubernetes_validate
import pytest

from jupyterhub_spaces.objects import (
    GUACD_IMAGE,
    check_guacd_image,
    guacd_image_version,
    make_guacd_sidecar,
    make_network_policy,
)

# oldest and newest schemas kubernetes-validate ships
K8S_VERSIONS = ["1.25.0", "1.37.0"]
LABELS = {"spaces.jupyter.org/space": "sales", "spaces.jupyter.org/mode": "sandbox"}


def sandbox_pod(sidecar: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-bob--sales", "namespace": "spaces", "labels": LABELS},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "example/spaces-sandbox:1",
                    "command": ["python3", "-m", "jupyterhub_spaces.sandbox.gateway",
                                "--SandboxSettings.guacd_host=127.0.0.1"],
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                },
                sidecar,
            ],
        },
    }


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_pod_with_guacd_sidecar_is_valid(version):
    sidecar = make_guacd_sidecar(recording_mount={"name": "recordings", "mountPath": "/recordings"})
    pod = sandbox_pod(sidecar)
    pod["spec"]["volumes"] = [{"name": "recordings", "emptyDir": {}}]
    kubernetes_validate.validate(pod, version, strict=True)


def test_guacd_sidecar_listens_on_loopback_only():
    c = make_guacd_sidecar()
    assert c["image"] == GUACD_IMAGE
    script = c["command"][-1]
    assert "-b 127.0.0.1 -l 4822" in script and "0.0.0.0" not in script
    assert "ports" not in c
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["readinessProbe"]["tcpSocket"]["host"] == "127.0.0.1"


@pytest.mark.parametrize(
    "image, version",
    [
        ("guacamole/guacd:1.5.5", (1, 5, 5)),
        ("docker.io/guacamole/guacd:1.6.0@sha256:" + "a" * 64, (1, 6, 0)),
        ("registry.local:5000/guacd:1.5.5-hardened", (1, 5, 5)),
        ("guacamole/guacd:latest", None),
        ("guacamole/guacd", None),
        ("registry.local:5000/guacd", None),
    ],
)
def test_guacd_image_version(image, version):
    assert guacd_image_version(image) == version


@pytest.mark.parametrize(
    "image, message",
    [
        ("guacamole/guacd:1.5.3", "CVE-2023-43826"),
        ("guacamole/guacd:1.4.0", "older than 1.5.5"),
        ("guacamole/guacd:latest", "no version tag"),
        ("guacamole/guacd", "no version tag"),
    ],
)
def test_old_or_unversioned_guacd_refused(image, message):
    with pytest.raises(ValueError, match=message):
        check_guacd_image(image)
    with pytest.raises(ValueError):
        make_guacd_sidecar(image)


def test_newer_guacd_accepted():
    assert check_guacd_image("guacamole/guacd:1.6.0") == "guacamole/guacd:1.6.0"


PROXY = {"podSelector": {"matchLabels": {"component": "proxy"}}}
HUB = {"podSelector": {"matchLabels": {"component": "hub"}}}
DATABASES = {"ipBlock": {"cidr": "10.20.0.5/32"}}


def policy():
    return make_network_policy(
        "jupyter-bob--sales", "spaces", LABELS,
        ingress_from=[PROXY, HUB], egress_to=[HUB, DATABASES], ingress_port=8888,
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_network_policy_is_valid(version):
    kubernetes_validate.validate(policy(), version, strict=True)


def test_network_policy_ingress_only_the_session_port_from_proxy_and_hub():
    spec = policy()["spec"]
    assert spec["podSelector"] == {"matchLabels": LABELS}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    [rule] = spec["ingress"]
    assert rule["from"] == [PROXY, HUB]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8888}]


def test_network_policy_egress_only_dns_and_the_named_peers():
    egress = policy()["spec"]["egress"]
    assert [r["to"] for r in egress] == [[HUB], [DATABASES], [{"namespaceSelector": {}}]]
    assert egress[-1]["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    # no rule opens "anything": each names its peers
    assert all(r.get("to") for r in egress)


def test_network_policy_without_peers_lets_nothing_in():
    spec = make_network_policy("p", "spaces", LABELS)["spec"]
    assert spec["ingress"] == [] and "Ingress" in spec["policyTypes"]
