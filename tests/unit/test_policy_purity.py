"""The policy package stays pure: no web framework, database or Kubernetes imports."""

import ast
import pathlib

import jupyterhub_spaces.policy

FORBIDDEN = ("tornado", "sqlalchemy", "kubernetes", "kubernetes_asyncio", "kubespawner",
             "jupyterhub", "alembic", "requests", "psycopg")
POLICY_DIR = pathlib.Path(jupyterhub_spaces.policy.__file__).parent


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_policy_modules_import_nothing_with_io():
    files = sorted(POLICY_DIR.glob("*.py"))
    assert len(files) >= 5
    offenders = [
        f"{path.name} imports {name}"
        for path in files
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom sqlalchemy.orm import Session\n")
    assert list(imported_modules(bad)) == ["os", "sqlalchemy.orm"]
