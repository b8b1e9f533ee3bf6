"""The hub's state stays the hub's: the state directory made private (files of earlier
runs too), demo data readable only through it, and the credentials file written into
an account's home without following the links the account may have put there."""

from __future__ import annotations

import os
import stat

import pytest

from jupyterhub_spaces import demo
from jupyterhub_spaces.databases.base import Credentials
from jupyterhub_spaces.databases.part import remove_credentials, write_credentials


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_private_state_tightens_what_earlier_runs_left(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    for name in ("jupyterhub.sqlite", "spaces.sqlite", "jupyterhub_cookie_secret", "demo-password"):
        (var / name).write_text("x")
        os.chmod(var / name, 0o644)
    (var / "superset").mkdir(mode=0o755)
    (var / "superset" / "secret").write_text("x")
    os.chmod(var / "superset" / "secret", 0o644)
    # links to folders and files, as Airflow's logs/<component>/latest: left as they are
    (var / "airflow" / "logs" / "2026-12-01").mkdir(parents=True, mode=0o755)
    (var / "airflow" / "logs" / "latest").symlink_to("2026-12-01")
    (var / "airflow" / "current.log").symlink_to("logs/2026-12-01")
    # shared state keeps its own modes: sessions reach it through their binds
    (var / "data" / "p").mkdir(parents=True, mode=0o755)
    (var / "data" / "p" / "a.csv").write_text("x")
    os.chmod(var / "data" / "p" / "a.csv", 0o644)
    demo.private_state(str(var))
    assert mode(var) == 0o700
    for name in ("jupyterhub.sqlite", "spaces.sqlite", "jupyterhub_cookie_secret", "demo-password"):
        assert mode(var / name) == 0o600, name
    assert mode(var / "superset") == 0o700 and mode(var / "superset" / "secret") == 0o600
    assert mode(var / "airflow" / "logs" / "2026-12-01") == 0o700
    assert (var / "airflow" / "logs" / "latest").is_symlink()
    assert mode(var / "data" / "p" / "a.csv") == 0o644


def test_demo_files_are_readable_below_a_private_state_directory(tmp_path):
    old = os.umask(0o077)  # as the hub runs
    try:
        written = demo.copy_files(str(tmp_path / "data"))
    finally:
        os.umask(old)
    assert written
    for path in written:
        assert mode(path) == 0o644
        assert mode(os.path.dirname(path)) == 0o755


CREDS = Credentials(1, "alice", "owner", "", {})


def test_credentials_are_written_private(tmp_path):
    path = tmp_path / "home" / ".spaces" / "databases.json"
    (tmp_path / "home").mkdir()
    write_credentials(str(path), CREDS)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    remove_credentials(str(path))
    assert not path.exists()


@pytest.mark.parametrize("link", ["folder", "file", "temporary file"])
def test_credentials_never_follow_a_link_out_of_the_home(tmp_path, link):
    home, outside = tmp_path / "home", tmp_path / "hub-state"
    home.mkdir()
    outside.mkdir()
    victim = outside / "databases.json.new"
    victim.write_text("hub data")
    folder = home / ".spaces"
    if link == "folder":
        folder.symlink_to(outside)
    else:
        folder.mkdir()
        name = "databases.json" if link == "file" else "databases.json.new"
        (folder / name).symlink_to(victim)
    path = folder / "databases.json"
    try:
        write_credentials(str(path), CREDS)
    except OSError:
        pass  # refusing is fine; writing through the link is not
    assert victim.read_text() == "hub data"
    assert sorted(p.name for p in outside.iterdir()) == ["databases.json.new"]
    remove_credentials(str(path))
    assert victim.read_text() == "hub data"
