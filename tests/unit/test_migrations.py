"""The alembic history is one straight line, and the models match its head."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from jupyterhub_spaces import orm
from jupyterhub_spaces.store import DatabaseRevisionError, Store, alembic_config, upgrade_db

import pytest


def test_single_head():
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_models_match_migrations(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/db.sqlite")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), orm.Base.metadata)
    assert diff == []


def test_refuses_database_at_other_revision(tmp_path):
    url = f"sqlite:///{tmp_path}/old.sqlite"
    upgrade_db(url, "head")
    with Store(url).engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num='0000-old'")
    with pytest.raises(DatabaseRevisionError, match="upgrade-db"):
        Store(url)
