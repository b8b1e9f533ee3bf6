"""Code Assets and Tasks without a server: the run-time rule, the checks of a task's
settings, content addressing, paths that try to leave a snapshot, the run's command
and identity, the Airflow site and the provider's imports."""

from __future__ import annotations

import ast
import json
import os
import pathlib
import stat
import sys

import pytest

from jupyterhub_spaces import policy
from jupyterhub_spaces.policy import Decision, Missing, Mode, Role, Target
from jupyterhub_spaces.tasks import codeasset, schedule
from jupyterhub_spaces.tasks.config import SpacesTasks
from jupyterhub_spaces.tasks.engine import AirflowSite, airflow_services, engine_role
from jupyterhub_spaces.tasks.identity import parse_identity, run_identity
from jupyterhub_spaces.tasks.runs import command

RETAIL = Target("product", 1, "retail")


def decision(mode, role=Role.owner, missing=()):
    return Decision("alice", 7, mode, role, tuple(missing))


@pytest.mark.parametrize("d,paused,allowed,says", [
    (decision(Mode.workbench), False, True, "workbench"),
    (Decision("alice", 7, Mode.sandbox, Role.owner, (), (RETAIL,)), False, True, "sandbox"),
    (decision(Mode.workbench, Role.editor), False, True, "workbench"),
    (decision(Mode.workbench, Role.viewer), False, False, "only owners and editors"),
    (decision(Mode.workbench, Role.publisher), False, False, "only owners and editors"),
    (decision(Mode.not_member, None), False, False, "no longer a member"),
    (decision(Mode.locked, missing=[Missing(RETAIL, "revoked")]), False, False, "was revoked"),
    (decision(Mode.locked, missing=[Missing(RETAIL, "expired")]), False, False, "has expired"),
    (decision(Mode.workbench), True, False, "paused"),
])
def test_may_run(d, paused, allowed, says):
    verdict = policy.may_run(d, paused, "by bob")
    assert verdict.allowed is allowed
    assert says in verdict.reason
    if d.mode == Mode.locked:
        assert verdict.missing == d.missing


@pytest.mark.parametrize("value,ok", [
    ("* * * * *", True), ("30 2 * * 1-5", True), ("@daily", True), ("*/15 * * * *", True),
    ("61 * * * *", False), ("* * * *", False), ("every day", False), ("* * * * * *", False),
    ("@sometimes", False), ("", False),
])
def test_check_cron(value, ok):
    assert (schedule.check_cron(value) is None) is ok


@pytest.mark.parametrize("value,ok", [
    ("UTC", True), ("Europe/Paris", True), ("America/New_York", True),
    ("Mars/Olympus", False), ("../../etc/passwd", False), ("", False), ("/etc/localtime", False),
])
def test_check_timezone(value, ok):
    assert (schedule.check_timezone(value) is None) is ok


@pytest.mark.parametrize("value,ok", [
    ({"rows": 3, "name": "x", "flag": True, "ratio": 0.5}, True),
    ({"not an identifier": 1}, False),
    ({"nested": {"a": 1}}, False),
    ({"big": "x" * 10001}, False),
])
def test_check_parameters(value, ok):
    assert (schedule.check_parameters(value) is None) is ok


@pytest.mark.parametrize("value,ok", [
    ([{"table": "forecast", "name": "Forecast"}], True),
    ([{"table": "a; drop table x", "name": "n"}], False),
    ([{"table": "t"}], False),
    (["t"], False),
    ([{"table": "t", "name": "n", "extra": 1}], False),
])
def test_check_publish(value, ok):
    assert (schedule.check_publish(value) is None) is ok


@pytest.mark.parametrize("path", ["../x.py", "/etc/passwd", "a/../../x.py", "a\\b.py", "", ".", "a\x00.py"])
def test_paths_cannot_leave_a_snapshot(path):
    with pytest.raises(codeasset.CodeAssetError):
        codeasset.clean_path(path)


def test_snapshot_picks_the_only_runnable_file_and_hashes_content():
    snap = codeasset.snapshot({"job.py": b"print(1)\n", "data/readme.txt": b"hi"}, None, 1000, 10)
    assert snap.entry == "job.py" and snap.kind == "folder"
    same = codeasset.snapshot({"data/readme.txt": b"hi", "job.py": b"print(1)\n"}, None, 1000, 10)
    assert same.hash == snap.hash
    changed = codeasset.snapshot({"job.py": b"print(2)\n", "data/readme.txt": b"hi"}, None, 1000, 10)
    assert changed.hash != snap.hash
    assert snap.manifest["job.py"] == codeasset.sha256(b"print(1)\n")


@pytest.mark.parametrize("files,entry,status,field", [
    ({}, None, 422, "files"),
    ({"a.py": b"1", "b.py": b"2"}, None, 422, "entry"),
    ({"a.txt": b"1"}, None, 422, "entry"),
    ({"a.py": b"1"}, "b.py", 422, "entry"),
    ({"nb.ipynb": b"not json"}, None, 422, "entry"),
    ({"a.py": b"x" * 2000}, None, 413, "files"),
    ({f"{i}.txt": b"" for i in range(11)}, None, 413, "files"),
])
def test_bad_snapshots(files, entry, status, field):
    with pytest.raises(codeasset.CodeAssetError) as e:
        codeasset.snapshot(files, entry, 1000, 10)
    assert (e.value.status, e.value.field) == (status, field)


def test_read_folder_never_follows_links_out_of_the_home(tmp_path):
    home = tmp_path / "home"
    (home / "job").mkdir(parents=True)
    (home / "job" / "run.py").write_text("print(1)\n")
    (home / "job" / ".ipynb_checkpoints").mkdir()
    (home / "job" / ".ipynb_checkpoints" / "x.py").write_text("old")
    secret = tmp_path / "secret.txt"
    secret.write_text("hub secret")
    (home / "job" / "leak.txt").symlink_to(secret)
    (home / "out").symlink_to(tmp_path)
    files = codeasset.read_folder(str(home), "job", 10_000, 10)
    assert files == {"run.py": b"print(1)\n"}
    with pytest.raises(codeasset.CodeAssetError):
        codeasset.read_folder(str(home), "out/secret.txt", 10_000, 10)
    with pytest.raises(codeasset.CodeAssetError):
        codeasset.read_folder(str(home), "../secret.txt", 10_000, 10)


def test_restore_never_writes_through_a_link(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "job").symlink_to(tmp_path)
    with pytest.raises(codeasset.CodeAssetError):
        codeasset.restore({"run.py": b"x"}, str(home), "job")
    assert not (tmp_path / "run.py").exists()
    assert codeasset.restore({"a/run.py": b"x"}, str(home), "restored") == ["restored/a/run.py"]
    assert (home / "restored" / "a" / "run.py").read_bytes() == b"x"


def test_the_command_of_a_notebook_and_of_a_script():
    cfg = SpacesTasks(run_python="/py")
    assert command(cfg, "job.py", {"a": 1}) == ["/py", "job.py"]
    argv = command(cfg, "nb.ipynb", {"rows": 3, "city": "leeds; rm -rf /", "on": True})
    assert argv[:3] == ["/py", "-m", "papermill"]
    # each value is one argument: nothing is read by a shell
    assert ["-r", "city", "leeds; rm -rf /"] == argv[argv.index("city") - 1: argv.index("city") + 2]
    assert ["-p", "rows", "3"] == argv[argv.index("rows") - 1: argv.index("rows") + 2]


@pytest.mark.parametrize("name", ["alice", "bob.smith", "x-run-1", "run-3"])
def test_a_run_identity_is_never_a_user_name(name):
    assert parse_identity(name) is None
    assert parse_identity(run_identity(name, 42)) == (name, 42)


def test_airflow_site_is_private_and_only_its_admin_gateway_is_routed(tmp_path):
    site = AirflowSite(home=tmp_path / "airflow", venv=tmp_path / "venv", db_url="sqlite:///x.db", port=1234,
                       ui_port=1235, spaces_api_url="http://127.0.0.1:9/services/spaces/api/v1/")
    services = {s["name"]: s for s in airflow_services(site, python="/py")}
    assert set(services) == {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow"}
    assert stat.S_IMODE(os.stat(site.home).st_mode) == 0o700
    for name in ("jwt_secret", "fernet_key", "passwords.json"):
        assert stat.S_IMODE(os.stat(site.home / name).st_mode) == 0o600
    # the one proxy route is the gateway, which lets in only holders of the admin scope
    assert [n for n, s in services.items() if "url" in s] == ["airflow"]
    assert services["airflow"]["oauth_client_allowed_scopes"] == ["custom:spaces:admin"]
    assert "--admin-scope=custom:spaces:admin" in services["airflow"]["command"]
    env = services["airflow-api-server"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor" and env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:1234/services/airflow/"
    assert json.loads(site.password_file.read_text()).keys() == {"spaces"}
    role = engine_role(list(services.values()))
    assert role["scopes"] == ["access:services!service=spaces"] and "airflow" not in role["services"]
    assert SpacesTasks().engine_services == ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor"]
    # idempotent: the secrets stay
    secret = (site.home / "jwt_secret").read_text()
    airflow_services(site)
    assert (site.home / "jwt_secret").read_text() == secret


PROVIDER = pathlib.Path(__file__).resolve().parents[2] / "jupyterhub_spaces" / "airflow"


def _imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module)
    return found


def provider_violations(folder: pathlib.Path) -> list[str]:
    # Airflow, and what Airflow's own virtualenv holds for YAML DAGs
    allowed_roots = set(sys.stdlib_module_names) | {"airflow", "__future__", "dagfactory", "jsonschema", "yaml"}
    return [f"{p.name} imports {name}" for p in sorted(folder.glob("*.py")) for name in _imports(p)
            if name.split(".")[0] not in allowed_roots]


def test_the_airflow_provider_imports_nothing_of_the_hub_or_service():
    assert provider_violations(PROVIDER) == []


def test_the_provider_check_sees_a_forbidden_import(tmp_path):
    (tmp_path / "bad.py").write_text("import os\nfrom jupyterhub_spaces.store import Store\nimport sqlalchemy\n")
    assert sorted(provider_violations(tmp_path)) == ["bad.py imports jupyterhub_spaces.store",
                                                     "bad.py imports sqlalchemy"]


def test_deleting_a_space_takes_its_code_assets_tasks_and_runs(tmp_path):
    from sqlalchemy import delete, func, select

    from jupyterhub_spaces import orm
    from jupyterhub_spaces.store import Store

    store = Store(f"sqlite:///{tmp_path / 'c.sqlite'}")
    try:
        with store.transaction() as db:
            org = orm.Organization(name="o")
            db.add(org)
            db.flush()
            user = orm.User(name="alice", org_id=org.id)
            db.add(user)
            db.flush()
            space = orm.Space(slug="s", display_name="S", owner_id=user.id, tools=[], profile="small")
            space.collaborators = [orm.Collaborator(user_id=user.id, role="owner")]
            db.add(space)
            db.flush()
            snap = codeasset.snapshot({"job.py": b"print(1)\n"}, None, 1000, 10)
            version, new = codeasset.save(db, space, "job", snap, "alice", "", {})
            again, new_again = codeasset.save(db, space, "job", snap, "alice", "", {})
            assert new and not new_again and again.id == version.id
            task = orm.Task(space_id=space.id, name="t", owner_id=user.id, version_id=version.id, parameters={},
                            timezone="UTC", profile="small", publish=[])
            db.add(task)
            db.flush()
            db.add(orm.TaskRun(task_id=task.id, state="success"))
            space_id = space.id
        with store.transaction() as db:
            db.execute(delete(orm.Space).where(orm.Space.id == space_id))
        with store.transaction() as db:
            for table in (orm.Task, orm.TaskRun, orm.CodeAsset, orm.CodeAssetVersion):
                assert db.scalar(select(func.count()).select_from(table)) == 0, table.__tablename__
    finally:
        store.dispose()


def test_restore_makes_nothing_through_a_link_on_the_way(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "job").symlink_to(outside)
    with pytest.raises(codeasset.CodeAssetError):
        codeasset.restore({"a/b/run.py": b"x"}, str(home), "job")
    # not even the folders on the way were made through the link
    assert list(outside.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_restore_gives_what_it_writes_to_the_home_owner(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, 65534, 65534)
    codeasset.restore({"a/run.py": b"x"}, str(home), "restored")
    for path in (home / "restored", home / "restored" / "a", home / "restored" / "a" / "run.py"):
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534), path


def test_a_link_swapped_in_while_reading_is_never_followed(tmp_path):
    """A running session can swap a file for a link between any check and the open;
    the service (root on the embedded default) must never read through it."""
    import threading

    secret = tmp_path / "secret.txt"
    secret.write_text("HUB-SECRET")
    home = tmp_path / "home"
    (home / "job").mkdir(parents=True)
    plain = home / "job" / "plain.py"
    link = home / "job" / "link.py"
    target = home / "job" / "run.py"
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            plain.write_text("print(1)\n")
            os.replace(plain, target)
            link.unlink(missing_ok=True)
            link.symlink_to(secret)
            os.replace(link, target)

    thread = threading.Thread(target=swap)
    thread.start()
    try:
        for _ in range(3000):
            try:
                files = codeasset.read_folder(str(home), "job", 10_000, 10)
            except codeasset.CodeAssetError:
                continue
            assert all(b"HUB-SECRET" not in data for data in files.values())
    finally:
        stop.set()
        thread.join()


def test_a_home_not_made_yet_is_a_clear_404(tmp_path):
    for call in (lambda: codeasset.read_folder(str(tmp_path / "none"), "job", 10, 1),
                 lambda: codeasset.restore({"run.py": b"x"}, str(tmp_path / "none"), "")):
        with pytest.raises(codeasset.CodeAssetError) as e:
            call()
        assert e.value.status == 404 and "activate the space" in e.value.message
