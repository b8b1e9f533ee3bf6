"""Runs the Spaces app's JavaScript unit tests (tests/unit/js) with Node's own test
runner: the rules the app applies before sending a spec to the service."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MODEL = HERE.parents[1] / "jupyterhub_spaces" / "service" / "static" / "model.js"


def test_app_model_rules(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the README's setup installs Node 20)")
    copy = tmp_path / "model.mjs"
    shutil.copy(MODEL, copy)
    out = subprocess.run(
        [node, "--test", *map(str, sorted((HERE / "js").glob("*.test.mjs")))],
        capture_output=True, text=True, timeout=120, cwd=HERE,
        env=dict(os.environ, APP_MODEL=copy.as_uri()),
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "# fail 0" in out.stdout
