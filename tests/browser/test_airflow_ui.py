"""Airflow's own web UI, as a spaces admin meets it through the hub: logged in by the
hub (no second login), Airflow's home page with its health; a member who is not an
admin gets nothing of it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow

AIRFLOW_VENV = Path(
    os.environ.get("SPACES_AIRFLOW_VENV")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jupyterhub-spaces" / "airflow-venv"
)


@pytest.fixture(autouse=True)
def _needs_airflow():
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        pytest.skip("no Airflow virtualenv: run scripts/setup.d/55-airflow.sh")


def airflow_up(port: int, timeout: float = 300) -> None:
    """Airflow starts with the hub (its first start migrates its database): wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            health = requests.get(f"http://127.0.0.1:{port}/services/airflow/api/v2/monitor/health", timeout=5).json()
            if health.get("scheduler", {}).get("status") == "healthy":
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(2)
    raise TimeoutError("Airflow did not start")


def test_an_admin_sees_airflows_ui_through_the_hub(demo_hub, login, shot):
    airflow_up(demo_hub.ports["airflow"])
    page = login("admin")
    page.goto(f"{demo_hub.url}/services/airflow/")
    page.get_by_text("Dag Processor").wait_for()
    page.get_by_text("Scheduler").first.wait_for()
    assert page.url.startswith(f"{demo_hub.url}/services/airflow/")
    shot(page, "airflow-ui-admin")


def test_a_member_who_is_not_an_admin_gets_nothing_of_airflow(demo_hub, login):
    page = login("alice")
    response = page.goto(f"{demo_hub.url}/services/airflow/")
    assert response.status == 403
    assert "Dag Processor" not in page.content()


def test_a_visitor_not_logged_in_is_sent_to_the_hubs_login(demo_hub):
    page = requests.get(f"{demo_hub.url}/services/airflow/", allow_redirects=False, timeout=30)
    assert page.status_code == 302, page.text  # it was a 500
    assert "/hub/api/oauth2/authorize" in page.headers["Location"] or "/hub/login" in page.headers["Location"]
    api = requests.post(f"{demo_hub.url}/services/airflow/api/v2/dags", allow_redirects=False, timeout=30)
    assert api.status_code == 403, api.text
