"""`jupyterhub-spaces upgrade-db` migrates the catalog it is told about, and refuses
to guess one (a new SQLite file in the working directory would report success while
the real catalog stays behind)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy

from jupyterhub_spaces.store import current_revision, head_revision

CLI = [sys.executable, "-m", "jupyterhub_spaces.cli", "upgrade-db"]


def run(tmp_path: Path, *args: str, env: dict | None = None):
    base = {k: v for k, v in os.environ.items() if k != "JUPYTERHUB_SPACES_DB_URL"}
    return subprocess.run([*CLI, *args], env={**base, **(env or {})}, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def revision(url: str) -> str | None:
    engine = sqlalchemy.create_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def test_without_a_database_it_refuses_and_creates_nothing(tmp_path):
    out = run(tmp_path)
    assert out.returncode == 2
    assert "JUPYTERHUB_SPACES_DB_URL" in out.stderr and "--db-url" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_environment_names_the_catalog(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    out = run(tmp_path, env={"JUPYTERHUB_SPACES_DB_URL": url})
    assert out.returncode == 0, out.stderr
    assert revision(url) == head_revision()


def test_the_option_wins_over_the_environment(tmp_path):
    chosen = f"sqlite:///{tmp_path / 'chosen.sqlite'}"
    other = tmp_path / "other.sqlite"
    out = run(tmp_path, f"--db-url={chosen}", env={"JUPYTERHUB_SPACES_DB_URL": f"sqlite:///{other}"})
    assert out.returncode == 0, out.stderr
    assert revision(chosen) == head_revision() and not other.exists()
