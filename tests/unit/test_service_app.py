"""The service application: it refuses a catalog at another schema revision, naming
the command that fixes it, and writes a config file with every setting."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from jupyterhub_spaces.service.app import SpacesService
from jupyterhub_spaces.store import Store


def test_refuses_a_database_at_another_revision(tmp_path, capfd):
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    Store(url).dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    engine.dispose()
    config = tmp_path / "spaces_config.py"
    config.write_text(f"c.SpacesSettings.db_url = {url!r}\n")
    app = SpacesService()
    try:
        with pytest.raises(SystemExit) as exit_info:
            app.initialize([f"--config={config}"])
    finally:
        SpacesService.clear_instance()
    assert exit_info.value.code == 1
    err = capfd.readouterr().err
    assert "0000_older" in err and "jupyterhub-spaces upgrade-db" in err


def test_starts_on_a_fresh_database_and_reads_the_config_file(tmp_path):
    config = tmp_path / "spaces_config.py"
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    config.write_text(f"c.SpacesSettings.db_url = {url!r}\nc.SpacesSettings.space_limit = 3\n")
    app = SpacesService()
    app.initialize([f"--config={config}"])
    try:
        assert app.spaces_settings.space_limit == 3
        assert app.store.url == url
        patterns = [p for p, *_ in app.handlers()]
        assert app.service_prefix + "api/v1/spaces" in patterns
        assert app.service_prefix + "oauth_callback" in patterns
    finally:
        app.store.dispose()
        SpacesService.clear_instance()


def test_generate_config_lists_every_setting(tmp_path):
    target = tmp_path / "generated.py"
    app = SpacesService()
    app.initialize(["--generate-config", f"--config={target}"])
    try:
        app.start()
    finally:
        SpacesService.clear_instance()
    text_ = target.read_text()
    for name in ("SpacesSettings.db_url", "SpacesSettings.admin_scope", "SpacesSettings.space_limit",
                 "SpacesService.max_page_size", "SpacesService.url"):
        assert f"# c.{name} =" in text_
