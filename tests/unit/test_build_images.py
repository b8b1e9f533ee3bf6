"""`scripts/build-images.sh` (``make images``) builds and pushes the three images to
the registry the admin names, and fails clearly without a container engine.

No Docker engine runs here: a stand-in ``docker`` on ``PATH`` records the commands it
is given (and answers ``info`` as an engine would, or not).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build-images.sh"
APP_VERSION = yaml.safe_load((ROOT / "helm" / "jupyterhub-spaces" / "Chart.yaml").read_text())[
    "appVersion"]
REGISTRY = "registry.example.org:5000/data"


def fake_engine(tmp_path: Path, engine_up: bool = True) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {shlex.quote(str(tmp_path / "calls"))}\n'
        f'if [ "$1" = info ]; then exit {0 if engine_up else 1}; fi\n'
        "exit 0\n"
    )
    docker.chmod(0o755)
    return bin_dir


def run(tmp_path: Path, *args: str, bin_dir: Path | None = None, make: bool = False):
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin" if bin_dir else "/usr/bin:/bin"}
    env.pop("DOCKER", None)
    cmd = (["make", "--no-print-directory", "-C", str(ROOT), "images", *args] if make
           else [str(SCRIPT), *args])
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)


def calls(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "calls"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def ref(image: str, tag: str = APP_VERSION) -> str:
    return f"{REGISTRY}/jupyterhub-spaces/{image}:{tag}"


def test_builds_then_pushes_each_image_to_the_named_registry(tmp_path):
    out = run(tmp_path, "--registry", REGISTRY + "/", bin_dir=fake_engine(tmp_path))
    assert out.returncode == 0, out.stderr
    assert calls(tmp_path) == [
        ["info"],
        ["build", "-f", "images/hub/Dockerfile", "-t", ref("hub"), "."],
        ["build", "-f", "images/workbench/Dockerfile", "-t", ref("workbench"), "."],
        ["build", "-f", "images/sandbox/Dockerfile", "-t", ref("sandbox"), "."],
        ["push", ref("hub")], ["push", ref("workbench")], ["push", ref("sandbox")],
    ]
    # and says which chart values name them
    values = yaml.safe_load(out.stdout.split("# Chart values naming these images", 1)[1]
                            .split("\n", 1)[1])
    assert values["sessions"]["sandbox"]["image"] == {
        "name": f"{REGISTRY}/jupyterhub-spaces/sandbox", "tag": APP_VERSION}
    assert values["jupyterhub"]["hub"]["image"]["name"] == f"{REGISTRY}/jupyterhub-spaces/hub"


def test_options_reach_the_builds(tmp_path):
    out = run(tmp_path, "--registry", REGISTRY, "--tag", "2026.12-rc1", "--no-push",
              "--platform", "linux/amd64", "--rstudio-deb", "https://example.org/rs.deb",
              bin_dir=fake_engine(tmp_path))
    assert out.returncode == 0, out.stderr
    builds = [c for c in calls(tmp_path) if c[0] == "build"]
    assert [c[4] for c in builds] == [ref(i, "2026.12-rc1") for i in ("hub", "workbench", "sandbox")]
    assert all(c[5:7] == ["--platform", "linux/amd64"] for c in builds)
    # RStudio goes into the session images only
    rstudio = "RSTUDIO_DEB_URL=https://example.org/rs.deb"
    assert [rstudio in c for c in builds] == [False, True, True]
    assert not any(c[0] == "push" for c in calls(tmp_path))


def test_make_images_runs_the_script(tmp_path):
    out = run(tmp_path, f"REGISTRY={REGISTRY}", "TAG=7", bin_dir=fake_engine(tmp_path), make=True)
    assert out.returncode == 0, out.stderr
    assert ["push", ref("sandbox", "7")] in calls(tmp_path)


@pytest.mark.parametrize("engine", ["down", "missing"])
def test_without_an_engine_it_fails_before_building(tmp_path, engine):
    bin_dir = fake_engine(tmp_path, engine_up=False) if engine == "down" else None
    if engine == "missing":
        (tmp_path / "bin").mkdir()
        bin_dir = tmp_path / "bin"
        if subprocess.run(["sh", "-c", "command -v docker"], env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                          capture_output=True).returncode == 0:
            pytest.skip("this machine has a docker client in /usr/bin")
    out = run(tmp_path, "--registry", REGISTRY, bin_dir=bin_dir)
    assert out.returncode == 2
    assert "--dry-run prints the commands" in out.stderr
    assert ("no container engine answers" if engine == "down" else "is not installed") in out.stderr
    assert not any(c[0] in ("build", "push") for c in calls(tmp_path))


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--registry is required"),
        (["--registry", "not a registry"], "is not a registry path"),
        (["--registry", REGISTRY, "--tag", "bad tag"], "is not a valid image tag"),
        (["--registry", REGISTRY, "--push-it"], "unknown option"),
    ],
)
def test_bad_arguments_are_refused_with_what_to_do(tmp_path, args, message):
    out = run(tmp_path, *args, bin_dir=fake_engine(tmp_path))
    assert out.returncode == 2 and message in out.stderr
    assert calls(tmp_path) == []


def test_dry_run_needs_no_engine(tmp_path):
    out = run(tmp_path, "--registry", REGISTRY, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert f"docker push {ref('sandbox')}" in out.stdout.splitlines()
