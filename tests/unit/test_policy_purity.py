"""The policy package stays pure: no web framework, database or Kubernetes imports,
whether named outright or reached through a relative import of the suite's own IO
modules (``from ..store import ...``, ``from .. import orm``)."""

import ast
import pathlib

import jupyterhub_spaces.policy

FORBIDDEN = ("tornado", "sqlalchemy", "kubernetes", "kubernetes_asyncio", "kubespawner",
             "jupyterhub", "alembic", "requests", "psycopg")
POLICY_DIR = pathlib.Path(jupyterhub_spaces.policy.__file__).parent
#: modules of the suite outside policy/ that policy may import: pure ones only
PURE_SIBLINGS = ("utils",)


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:
            # out of policy/ into the suite: "jupyterhub_spaces.<module>"
            names = [node.module] if node.module else [alias.name for alias in node.names]
            yield from (f"jupyterhub_spaces.{name}" for name in names)


def io_import(name: str) -> bool:
    parts = name.split(".")
    if parts[0] == "jupyterhub_spaces":
        return len(parts) > 1 and parts[1] not in ("policy", *PURE_SIBLINGS)
    return parts[0] in FORBIDDEN


def test_policy_modules_import_nothing_with_io():
    files = sorted(POLICY_DIR.glob("*.py"))
    assert len(files) >= 5
    offenders = [
        f"{path.name} imports {name}"
        for path in files
        for name in imported_modules(path)
        if io_import(name)
    ]
    assert offenders == []


def test_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom sqlalchemy.orm import Session\n")
    assert list(imported_modules(bad)) == ["os", "sqlalchemy.orm"]
    assert [io_import(n) for n in imported_modules(bad)] == [False, True]


def test_checker_sees_a_relative_import_of_an_io_module(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from .model import Role\n"
        "from ..store import decide\n"
        "from .. import orm, utils\n"
        "from ...service.guard import SessionGuard\n"
        "from ..jupyterhub_spaces import policy\n"
        "from ..utils import utcnow\n"
    )
    found = list(imported_modules(bad))
    assert [n for n in found if io_import(n)] == [
        "jupyterhub_spaces.store",
        "jupyterhub_spaces.orm",
        "jupyterhub_spaces.service.guard",
        "jupyterhub_spaces.jupyterhub_spaces",
    ]
    assert "jupyterhub_spaces.utils" in found
