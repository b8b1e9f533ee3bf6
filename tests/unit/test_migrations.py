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


def _space(db, slug, owner_id):
    space = orm.Space(slug=slug, display_name=slug, owner_id=owner_id, tools=["jupyterlab"],
                      profile="small", workers=0)
    space.collaborators = [orm.Collaborator(user_id=owner_id, role="owner")]
    db.add(space)
    db.flush()
    return space.id


def test_a_deleted_spaces_id_is_never_given_again(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/db.sqlite")
    with store.transaction() as db:
        db.add(orm.User(name="alice"))
        db.flush()
        owner = db.query(orm.User).one().id
        first, newest = _space(db, "first", owner), _space(db, "newest", owner)
    with store.transaction() as db:
        db.delete(db.get(orm.Space, newest))
    with store.transaction() as db:
        again = _space(db, "again", owner)
    assert again > newest > first


def test_upgrading_keeps_every_row_and_reference(tmp_path):
    """The tables are recreated on SQLite: children of a recreated table (collaborators
    of a space) must survive it, and the ids must stop being reused."""
    url = f"sqlite:///{tmp_path}/old.sqlite"
    upgrade_db(url, "0001")
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, display_name, created_at) VALUES (1, 'alice', '', '2026-01-01')"))
        for i in (1, 2):
            conn.execute(text(
                "INSERT INTO spaces (id, slug, display_name, description, owner_id, tools, profile, workers, "
                f"created_at, updated_at) VALUES ({i}, 's{i}', 'S', '', 1, '[]', 'small', 0, '2026-01-01', '2026-01-01')"))
            conn.execute(text(f"INSERT INTO collaborators (space_id, user_id, role, added_at) VALUES ({i}, 1, 'owner', '2026-01-01')"))
        conn.execute(text("DELETE FROM collaborators WHERE space_id = 2"))
        conn.execute(text("DELETE FROM spaces WHERE id = 2"))
    engine.dispose()
    store = Store(url, upgrade=True)
    with store.transaction() as db:
        assert [(c.space_id, c.role) for c in db.query(orm.Collaborator)] == [(1, "owner")]
        created = _space(db, "s3", 1)
    with store.transaction() as db:
        db.delete(db.get(orm.Space, created))
    with store.transaction() as db:
        assert _space(db, "s4", 1) == created + 1
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'spaces'").scalar()
        assert "AUTOINCREMENT" in sql
