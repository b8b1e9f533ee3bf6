"""The container images' Dockerfiles are honest: multi-stage, non-root, every file
they copy exists, every pinned requirement agrees with pyproject.toml.

No Docker engine runs here, so the Dockerfiles are parsed, not built.
"""

from __future__ import annotations

import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
sys.path.insert(0, str(ROOT / "scripts"))

import image_requirements  # noqa: E402

NAMES = sorted(image_requirements.IMAGES)


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, f"{dockerfile} ends inside a continued line"
    return out


def stages(parsed):
    """Stage names in order ('' for an unnamed stage) and the build args before FROM."""
    names = []
    for keyword, args in parsed:
        if keyword == "FROM":
            words = args.split()
            names.append(words[2] if len(words) >= 3 and words[1].upper() == "AS" else "")
    return names


def copy_parts(args: str) -> tuple[dict[str, str], list[str], str]:
    words = shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, words[:-1], words[-1]


@pytest.fixture(params=NAMES)
def image(request):
    return request.param


def test_each_image_has_a_dockerfile_and_a_readme_saying_how_to_build_it(image):
    assert (IMAGES / image / "Dockerfile").is_file()
    readme = (IMAGES / image / "README.md").read_text()
    assert f"docker build -f images/{image}/Dockerfile" in readme


def test_builds_are_multi_stage_with_pinned_bases(image):
    parsed = instructions(IMAGES / image / "Dockerfile")
    args = {}
    for keyword, rest in parsed:
        if keyword == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value.strip('"')
    bases = [rest.split()[0] for keyword, rest in parsed if keyword == "FROM"]
    assert len(bases) >= 2, "build the package in a stage of its own"
    for base in bases:
        base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base)
        if base in stages(parsed):
            continue
        assert ":" in base and not base.endswith(":latest"), f"unpinned base image {base}"


def test_final_stage_runs_as_a_non_root_user(image):
    parsed = instructions(IMAGES / image / "Dockerfile")
    last_from = max(i for i, (k, _) in enumerate(parsed) if k == "FROM")
    users = [rest for keyword, rest in parsed[last_from:] if keyword == "USER"]
    assert users, "the final stage must set USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_every_copied_file_exists_and_every_stage_reference_is_earlier(image):
    dockerfile = IMAGES / image / "Dockerfile"
    parsed = instructions(dockerfile)
    seen_stages: list[str] = []
    ignore = (IMAGES / image / "Dockerfile.dockerignore").read_text().splitlines()
    kept = [line[1:] for line in ignore if line.startswith("!")]
    for keyword, rest in parsed:
        if keyword == "FROM":
            seen_stages.append(stages([(keyword, rest)])[0])
            continue
        if keyword not in {"COPY", "ADD"}:
            continue
        assert keyword == "COPY", "use COPY, not ADD (no remote URLs or archives)"
        flags, sources, _dest = copy_parts(rest)
        if "from" in flags:
            assert flags["from"] in seen_stages[:-1], f"COPY --from={flags['from']} unknown"
            continue
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.relative_to(ROOT)} copies {source}"
            # the build context keeps it (Dockerfile.dockerignore drops everything else)
            assert any(source == k or source.startswith(k.rstrip("/") + "/") for k in kept), (
                f"{source} is excluded from the build context by Dockerfile.dockerignore")


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"{path.name}: {line!r} is not pinned with =="
        pins[canonicalize_name(name)] = version
    return pins


def test_every_pinned_requirement_agrees_with_pyproject(image):
    pins = read_pins(IMAGES / image / "requirements.txt")
    extras = image_requirements.IMAGES[image]
    wanted = image_requirements.project_requirements(extras)
    assert wanted, "pyproject.toml names no requirements?"
    env = image_requirements.target_environment()
    for req in wanted:
        if req.marker and not req.marker.evaluate({**env, "extra": ""}):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{image}: {req} from pyproject.toml is not pinned"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{image}: {name}=={pins[name]} does not satisfy {req} in pyproject.toml")
    # the project itself is installed from the wheel built in the image, not a pin
    assert "jupyterhub-spaces" not in pins


def test_requirement_files_the_dockerfile_installs_are_the_generated_ones(image):
    text = (IMAGES / image / "Dockerfile").read_text()
    assert f"COPY images/{image}/requirements.txt" in text
    if image in image_requirements.SUPERSET_IMAGES:
        assert f"COPY images/{image}/superset-requirements.txt" in text
        pins = read_pins(IMAGES / image / "superset-requirements.txt")
        # Superset cannot share SQLAlchemy 2 with the project: its pins must say so
        assert "apache-superset" in pins
        assert pins["sqlalchemy"].startswith("1.")


def test_project_requirements_follow_extras_that_name_the_project():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {canonicalize_name(r.name)
             for r in image_requirements.project_requirements(["postgres", "kubernetes"])}
    for text in project["dependencies"] + project["optional-dependencies"]["kubernetes"]:
        assert canonicalize_name(Requirement(text).name) in names
    assert "jupyterhub-spaces" not in names
