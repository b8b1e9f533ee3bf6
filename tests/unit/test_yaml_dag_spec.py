"""The YAML DAG schema (jupyterhub_spaces.airflow.spec) and the link-safe reading of a
member's dags/ folder: table-driven, attack cases first."""

from __future__ import annotations

import os
import textwrap

import pytest

from jupyterhub_spaces.airflow import spec
from jupyterhub_spaces.tasks import codeasset, yamldags

SPACE = 7

GOOD = textwrap.dedent("""\
    nightly:
      description: refresh the summary
      schedule: "30 2 * * *"
      timezone: Europe/Paris
      default_args: {retries: 1}
      tasks:
        load:
          operator: code_asset
          code_asset: forecast
          version: 2
          parameters: {rows: 3, region: north, import_date: "2026-01-01"}
        summary:
          operator: sql
          conn_id: space_7_collaborative
          sql: "CREATE TABLE t AS SELECT '{{ var.value.x }}' AS v, '$AIRFLOW__CORE__FERNET_KEY' AS k"
          dependencies: [load]
        share:
          operator: publish
          table: summary
          name: Summary
          dependencies: [summary]
    """)


def step(**fields) -> str:
    body = "\n".join(f"      {k}: {v}" for k, v in fields.items())
    return f"d:\n  tasks:\n    s:\n{body}\n"


def test_a_good_file_is_checked_and_kept_as_plain_text():
    dags = yamldags.check_file(SPACE, GOOD.encode())
    assert list(dags) == ["nightly"]
    sql = dags["nightly"]["tasks"]["summary"]["sql"]
    # never expanded, never rendered: the text stays what the member wrote
    assert "$AIRFLOW__CORE__FERNET_KEY" in sql and "{{ var.value.x }}" in sql


ATTACKS = [
    # another operator, even a real Airflow one or our own class by its path
    (step(operator="airflow.providers.standard.operators.bash.BashOperator", bash_command="id"),
     "is not allowed: a step's operator is one of code_asset, publish, sql"),
    (step(operator="jupyterhub_spaces.airflow.steps.SQLStep"), "is not allowed"),
    (step(operator="PythonOperator"), "is not allowed"),
    # a callable, by any of dag-factory's spellings
    (step(operator="code_asset", code_asset="x", python_callable="os.system"), "'python_callable' would name Python code"),
    (step(operator="code_asset", code_asset="x", python_callable_file="/etc/passwd", python_callable_name="f"),
     "would name Python code"),
    (step(decorator="airflow.sdk.task", code_asset="x"), "'decorator' would name Python code"),
    (step(operator="sql", conn_id="space_7_publish", sql="x", on_failure_callback="os.system"),
     "'on_failure_callback' would name Python code"),
    (step(operator="sql", conn_id="space_7_publish", sql="x", execution_date_fn="os.getcwd"), "would name Python code"),
    ("d:\n  user_defined_macros: {m: os.system}\n  tasks: {s: {operator: publish, table: t, name: n}}\n",
     "'user_defined_macros' would name Python code"),
    ("d:\n  default_args: {on_success_callback: builtins.exec}\n  tasks: {s: {operator: publish, table: t, name: n}}\n",
     "would name Python code"),
    ("d:\n  default_args: {owner: root}\n  tasks: {s: {operator: publish, table: t, name: n}}\n",
     "Additional properties are not allowed ('owner'"),
    ("d:\n  template_searchpath: /etc\n  tasks: {s: {operator: publish, table: t, name: n}}\n",
     "would name Python code"),
    ("d:\n  doc_md_file_path: /etc/shadow\n  tasks: {s: {operator: publish, table: t, name: n}}\n",
     "would name Python code"),
    # Python tags never load
    ("d: !!python/object/apply:os.system ['id']\n", "Python tag"),
    ("d:\n  tasks:\n    s: {operator: !!python/name:os.system '', table: t, name: n}\n", "Python tag"),
    ("d: !!python/module:os\n", "Python tag"),
    # a small file cannot expand into a huge one
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]\n",
     "aliases (*a) are not allowed"),
    # unknown keys, wrong shapes
    (step(operator="sql", conn_id="space_7_publish", sql="x", bash_command="id"),
     "Additional properties are not allowed ('bash_command'"),
    ("- just\n- a list\n", "must map DAG names to DAGs"),
    ("d:\n  tasks: {}\n", "should be non-empty"),
    ("bad name:\n  tasks: {s: {operator: publish, table: t, name: n}}\n", "does not match"),
    ("d:\n  tasks: {'../x': {operator: publish, table: t, name: n}}\n", "does not match"),
    (step(operator="publish", table="t; drop table x", name="n"), "does not match"),
    (step(operator="code_asset", code_asset="x", parameters="{'a b': 1}"), "does not match"),
    (step(operator="code_asset", code_asset="x", retries=99), "99 is greater than the maximum of 10"),
    ("d:\n  tasks:\n    a: {operator: publish, table: t, name: n, dependencies: [b]}\n"
     "    b: {operator: publish, table: t, name: n, dependencies: [a]}\n", "make a cycle"),
    ("d:\n  tasks:\n    a: {operator: publish, table: t, name: n, dependencies: [nope]}\n", "no step 'nope'"),
    # connections: only this space's Collaborative or Publish database
    (step(operator="sql", conn_id="space_8_collaborative", sql="select 1"),
     "'space_8_collaborative' is a connection of another space: this space's are 'space_7_collaborative'"),
    (step(operator="sql", conn_id="space_7_asset", sql="delete from x"), "Collaborative or Publish"),
    (step(operator="sql", conn_id="postgres_default", sql="select 1"), "does not match"),
    # schedules and time zones as a Task's
    ("d:\n  schedule: every day\n  tasks: {s: {operator: publish, table: t, name: n}}\n", "not a cron expression"),
    ("d:\n  timezone: Mars/Olympus\n  tasks: {s: {operator: publish, table: t, name: n}}\n", "unknown time zone"),
    ("d: [unclosed\n", "not valid YAML"),
]


@pytest.mark.parametrize("text, says", ATTACKS)
def test_what_a_yaml_dag_may_not_hold(text, says):
    with pytest.raises(spec.SpecError) as e:
        yamldags.check_file(SPACE, text.encode())
    assert says in str(e.value)


def test_a_huge_file_is_refused_before_it_is_parsed():
    with pytest.raises(spec.SpecError, match="at most 262144"):
        spec.load(b"#" * (spec.MAX_FILE_BYTES + 1))


def test_dag_factory_is_given_only_our_operators_and_the_steps_identity():
    dags = yamldags.check_file(SPACE, GOOD.encode())
    defn = {"dag_id": spec.dag_id(SPACE, 3, "nightly"), "name": "nightly", "space_id": SPACE, "owner": "alice",
            "owner_id": 3, "file": "etl.yaml", "spec": dags["nightly"]}
    config = spec.dagfactory_config(defn)
    assert {t["operator"] for t in config["tasks"].values()} == set(spec.OPERATORS.values())
    for name, task in config["tasks"].items():
        assert set(task) == {"operator", "space_id", "owner_id", "dag_file", "dag_name", "retries",
                             "execution_timeout_seconds", "dependencies"}
    assert config["tasks"]["load"]["retries"] == 1  # from default_args
    assert config["tasks"]["share"]["dependencies"] == ["summary"]
    assert "sql" not in str(config["tasks"]) and "forecast" not in str(config["tasks"])
    assert config["schedule"] == "30 2 * * *" and config["timezone"] == "Europe/Paris"


@pytest.mark.parametrize("value, parsed", [
    ("space_7_collaborative", (7, "collaborative")), ("space_12_asset", (12, "asset")),
    ("space_7_secret", (None, "")), ("space_x_publish", (None, "")), ("space_7_publish_", (None, "")),
    ("aws_default", (None, "")), ("", (None, "")),
])
def test_connection_ids(value, parsed):
    assert spec.parse_conn_id(value) == parsed


# -- reading a member's dags/ folder -------------------------------------------------


def test_a_dags_folder_is_read_without_following_links_and_within_bounds(tmp_path):
    home = tmp_path / "home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "good.yaml").write_text(GOOD)
    (dags / "notes.txt").write_text("not a DAG")
    secret = tmp_path / "secret.yaml"
    secret.write_text("hub: secrets\n")
    os.symlink(secret, dags / "link.yaml")
    (dags / "huge.yaml").write_bytes(b"#" * (spec.MAX_FILE_BYTES + 10))
    os.mkfifo(dags / "fifo.yaml")
    found, problems = codeasset.read_top_files(str(home), "dags", yamldags.SUFFIXES, spec.MAX_FILE_BYTES, 50)
    assert set(found) == {"good.yaml"}
    assert "link" in problems["link.yaml"] and "larger" in problems["huge.yaml"]
    assert "not a plain file" in problems["fifo.yaml"] or "link or unreadable" in problems["fifo.yaml"]


def test_a_dags_folder_that_is_a_link_is_not_read(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.yaml").write_text(GOOD)
    os.symlink(elsewhere, home / "dags")
    found, problems = codeasset.read_top_files(str(home), "dags", yamldags.SUFFIXES, spec.MAX_FILE_BYTES, 50)
    assert found == {} and "not a plain folder" in problems["dags"]


def test_thousands_of_files_cost_a_bounded_read(tmp_path):
    dags = tmp_path / "home" / "dags"
    dags.mkdir(parents=True)
    for i in range(2000):
        (dags / f"f{i:04}.yaml").write_text("x: 1\n")
    found, problems = codeasset.read_top_files(str(tmp_path / "home"), "dags", yamldags.SUFFIXES,
                                               spec.MAX_FILE_BYTES, 50)
    assert len(found) == 50 and len(found) + len(problems) <= 501
    assert all("at most 50" in p for p in problems.values())


def test_one_bad_file_leaves_the_others_and_two_files_may_not_share_a_dag(tmp_path):
    from jupyterhub_spaces.tasks.config import SpacesTasks

    cfg = SpacesTasks(space_home_template=str(tmp_path / "{username}" / "{space}"))
    dags = tmp_path / "alice" / "space-7" / "dags"
    dags.mkdir(parents=True)
    (dags / "a.yaml").write_text(GOOD)
    (dags / "b.yaml").write_text(step(operator="BashOperator"))
    (dags / "c.yml").write_text(GOOD)  # the same DAG name again
    (dags / "variables.yaml").write_text("region: north\nlimit: 10\n")
    files = {f.file: f for f in yamldags.member_files(cfg, 7, 3, "alice")}
    assert set(files) == {"a.yaml", "b.yaml", "c.yml"}
    assert files["a.yaml"].error == "" and list(files["a.yaml"].dags) == ["nightly"]
    assert "is not allowed" in files["b.yaml"].error
    assert "defined in dags/a.yaml too" in files["c.yml"].error
    assert [d["dag_id"] for d in files["a.yaml"].definitions()] == ["space_7_u3_nightly"]
    assert yamldags.check_variables(b"region: north\nlimit: 10\nok: true\n") == {
        "region": "north", "limit": "10", "ok": "true"}
    with pytest.raises(spec.SpecError, match="text, a number"):
        yamldags.check_variables(b"x: {nested: 1}\n")


def test_the_sql_steps_runner_runs_all_statements_in_one_transaction_on_sqlite(tmp_path):
    """The fixed runner a SQL step runs (in the owner's sandbox, with the run's login):
    every statement, or none when one fails."""
    import sqlite3
    import subprocess
    import sys

    from jupyterhub_spaces.tasks.dagruns import SQL_RUNNER

    db = tmp_path / "collaborative.db"
    env = {"SPACES_SQL_URL": f"sqlite:///{db}", "PATH": os.environ["PATH"]}
    (tmp_path / "step.sql").write_text("CREATE TABLE staging (n int);\nINSERT INTO staging VALUES (1), (2), (3);\n")
    done = subprocess.run([sys.executable, "-c", SQL_RUNNER], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "the SQL ran on sqlite:///" in done.stdout
    (tmp_path / "step.sql").write_text("INSERT INTO staging VALUES (4);\nINSERT INTO nowhere VALUES (5);\n")
    done = subprocess.run([sys.executable, "-c", SQL_RUNNER], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "nowhere" in done.stderr
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT n FROM staging ORDER BY n")] == [1, 2, 3]


def test_a_step_is_read_again_when_it_starts(tmp_path):
    """The service reads the step from the owner's file at its start: an edit naming
    another space's connection since Airflow parsed it refuses the step, with why."""
    from jupyterhub_spaces.tasks.config import SpacesTasks

    cfg = SpacesTasks(space_home_template=str(tmp_path / "{username}" / "{space}"))
    dags = tmp_path / "alice" / "space-7" / "dags"
    dags.mkdir(parents=True)
    (dags / "etl.yaml").write_text(GOOD)
    step = yamldags.find_step(cfg, 7, 3, "alice", "etl.yaml", "nightly", "load")
    assert step["code_asset"] == "forecast" and step["retries"] == 1  # default_args apply
    (dags / "etl.yaml").write_text(GOOD.replace("space_7_collaborative", "space_8_collaborative"))
    with pytest.raises(yamldags.StepNotFound, match="is not valid now: .*a connection of another space"):
        yamldags.find_step(cfg, 7, 3, "alice", "etl.yaml", "nightly", "summary")
    with pytest.raises(yamldags.StepNotFound, match="no step 'gone'"):
        (dags / "etl.yaml").write_text(GOOD)
        yamldags.find_step(cfg, 7, 3, "alice", "etl.yaml", "nightly", "gone")
