"""Tasks where users see them, in a real Chromium against the embedded default with its
real Airflow: the Tasks panel of a space and a task's page (runs, logs, run now,
pause and resume, a create form that shows the API's errors), and "Save as code
asset" from the JupyterLab file browser.

The tests share one hub and run in order: alice finds the demo task that already ran,
runs it again, pauses and resumes it, fails to create a task with a bad schedule, then
saves a script of her space from JupyterLab. Screenshots go to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from demo_hub import wait_for

pytestmark = pytest.mark.slow

DEMO_TASK = "Morning sales summary"
#: Airflow starting and running a task on a busy machine: a wait, not an assertion
RUN_WAIT = 600
SPAWN_WAIT = 240_000

API_JS = """async ({path, method, body}) => {
  const cfg = JSON.parse(document.getElementById('spaces-config').textContent);
  const r = await fetch(cfg.api + path, {method: method || 'GET', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'X-XSRFToken': cfg.xsrf},
    body: body == null ? undefined : JSON.stringify(body)});
  return {status: r.status, body: r.status === 204 ? null : await r.json()};
}"""


@pytest.fixture(scope="module", autouse=True)
def airflow_present():
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = Path(os.environ.get("SPACES_AIRFLOW_VENV") or cache / "jupyterhub-spaces" / "airflow-venv")
    if not (venv / "bin" / "airflow").exists():
        pytest.skip("no Airflow virtualenv: run scripts/setup.d/55-airflow.sh")


def api(page, path, method="GET", body=None):
    return page.evaluate(API_JS, {"path": path, "method": method, "body": body})


def space_id(page, slug="retail-forecasting") -> int:
    spaces = api(page, "spaces")["body"]["items"]
    return next(s["id"] for s in spaces if s["slug"] == slug)


def open_space(page, slug="retail-forecasting"):
    page.goto(page.url.split("#")[0] + f"#/spaces/{space_id(page, slug)}")
    page.wait_for_selector("#tasks")


def wait_until(check, every=2.0, what=""):
    return wait_for(check, timeout=RUN_WAIT, every=every, what=what)


def demo_task(page) -> dict:
    tasks = api(page, f"spaces/{space_id(page)}/tasks")["body"]["items"]
    return next(t for t in tasks if t["name"] == DEMO_TASK)


def test_the_space_lists_the_demo_task_that_already_ran_with_its_log(login, demo_hub, shot):
    page = login("alice")
    # the first run starts by itself once Airflow is up; it may still be on its way
    wait_until(lambda: any(r["state"] == "success" for r in demo_task(page)["last_runs"]),
               what=f"the demo task's first run:\n{demo_hub.log()[-3000:]}")
    open_space(page)
    row = page.locator(f"#task-list tr[data-task='{DEMO_TASK}']")
    row.wait_for()
    assert row.locator(".schedule").inner_text() == "0 6 * * * (Europe/London)"
    assert row.locator(".next-run").inner_text() not in ("", "—")
    assert row.locator(".last-runs .badge-active", has_text="success").count() >= 1
    page.locator("#code-assets li[data-asset='sales-summary']", has_text="version 1").wait_for()
    shot(page, "30-space-tasks")

    row.locator("a", has_text=DEMO_TASK).click()
    page.wait_for_selector("#runs tbody tr[data-state='success']")
    assert page.locator("#task-schedule").inner_text() == "0 6 * * * (Europe/London)"
    log = page.locator("#run-log")
    log.filter(has_text="sales summary of space retail-forecasting").wait_for()
    assert "done" in log.inner_text()
    shot(page, "31-task-runs-and-log")


def test_run_now_adds_a_run_that_reaches_success(login, shot):
    page = login("alice")
    task = demo_task(page)
    before = len(api(page, f"tasks/{task['id']}/runs")["body"]["items"])
    page.goto(page.url.split("#")[0] + f"#/spaces/{task['space_id']}/tasks/{task['id']}")
    page.wait_for_selector("#runs tbody tr[data-run]")
    page.click(".head-actions [data-action=run]")
    page.wait_for_selector("#flash.flash-ok")
    # the new run shows once Airflow starts it, and the page follows it to its end
    rows = page.locator("#runs tbody tr[data-run]")
    wait_until(lambda: rows.count() > before, every=1, what="the new run to show")
    newest = rows.first
    wait_until(lambda: newest.get_attribute("data-state") not in (None, "running"), every=1,
               what="the new run to end")
    assert newest.get_attribute("data-state") == "success"
    assert "sales summary" in page.locator("#run-log").inner_text()
    assert page.locator("#log-title").inner_text().startswith(f"Log of run {newest.get_attribute('data-run')}")
    shot(page, "32-run-now-success")


def test_pause_and_resume(login, shot):
    page = login("alice")
    task = demo_task(page)
    page.goto(page.url.split("#")[0] + f"#/spaces/{task['space_id']}/tasks/{task['id']}")
    page.click(".head-actions [data-action=pause]")
    page.wait_for_selector("#view h1 .badge-suspended")
    assert page.locator("#task-next-run").inner_text() == "paused"
    assert page.locator(".head-actions [data-action=run]").is_disabled()
    assert demo_task(page)["paused"] is True
    shot(page, "33-task-paused")
    page.click(".head-actions [data-action=resume]")
    page.wait_for_selector("#view h1 .badge-active")
    assert demo_task(page)["paused"] is False
    assert page.locator("#task-next-run").inner_text() != "paused"


def test_a_task_with_a_bad_schedule_shows_the_api_error_and_is_not_created(login, shot):
    page = login("alice")
    open_space(page)
    page.click("#new-task")
    form = page.locator("#task-form")
    form.wait_for()
    # the form offers the space's Code Assets, the demo's among them
    assert form.locator("[name=code_asset_id] option", has_text="sales-summary").count() == 1
    form.locator("[name=name]").fill("Hourly by mistake")
    form.locator("[name=schedule]").fill("every hour")
    form.locator("#create-task").click()
    error = page.locator("#task-form-error")
    error.filter(has_text="not a cron expression").wait_for()
    field = form.locator(".field-error[data-for=schedule]")
    assert field.inner_text(), "the schedule field shows its own message"
    assert form.locator("[name=schedule]").get_attribute("aria-invalid") == "true"
    shot(page, "34-task-form-bad-cron")
    names = [t["name"] for t in api(page, f"spaces/{space_id(page)}/tasks")["body"]["items"]]
    assert names == [DEMO_TASK]


def test_save_as_code_asset_from_the_jupyterlab_file_browser(login, demo_hub, shot):
    page = login("alice")
    open_space(page)
    page.click("#activate")
    page.wait_for_selector("#open-session", timeout=SPAWN_WAIT)
    lab = page.locator("#open-session").get_attribute("href")
    with page.expect_response(lambda r: "/lab/api/build" in r.url, timeout=SPAWN_WAIT):
        page.goto(lab if lab.startswith("http") else demo_hub.url + lab)
    # a script in the space home, written through JupyterLab's own contents API
    status = page.evaluate("""async () => {
      const xsrf = document.cookie.split('; ').find(c => c.startsWith('_xsrf='))?.slice(6) || '';
      const base = document.querySelector('#jupyter-config-data')
        ? JSON.parse(document.querySelector('#jupyter-config-data').textContent).baseUrl : '/';
      const r = await fetch(base + 'api/contents/weekly_report.py', {method: 'PUT', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf},
        body: JSON.stringify({type: 'file', format: 'text', content: 'print("weekly report")\\n'})});
      return r.status;
    }""")
    assert status in (200, 201)
    # the session opened on the Spaces panel: go to the file browser
    page.locator("#jupyterhub-spaces-panel .jp-SpacesPanel-current").wait_for(timeout=120_000)
    page.click("li[data-id='filebrowser']")
    page.click(".jp-FileBrowser [data-command='filebrowser:refresh']")
    item = page.locator(".jp-DirListing-item", has_text="weekly_report.py")
    item.wait_for(timeout=60_000)
    item.click(button="right")
    page.locator(".lm-Menu-item", has_text="Save as code asset").click()
    dialog = page.locator(".jp-Dialog")
    assert dialog.locator("input").input_value() == "weekly_report"
    dialog.locator(".jp-mod-accept").click()
    page.locator(".jp-Dialog", has_text="What changed").locator("input").fill("first draft")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    done = page.locator(".jp-Dialog", has_text="Saved as code asset")
    done.wait_for()
    assert "version 1" in done.inner_text()
    done.locator(".jp-mod-accept").click()
    # the sidebar's Tasks section: the space's tasks and Code Assets, the new one too
    page.click("li[data-id='jupyterhub-spaces-panel']")
    panel = page.locator("#jupyterhub-spaces-panel")
    assert "last run success" in panel.locator(f".jp-SpacesPanel-tasks li[data-task='{DEMO_TASK}']").inner_text()
    assert panel.locator(".jp-SpacesPanel-assets li[data-asset='weekly_report']", has_text="version 1").is_visible()
    shot(page, "35-lab-saved-as-code-asset")

    # the Spaces app shows the version
    app = login("alice")
    open_space(app)
    entry = app.locator("#code-assets li[data-asset='weekly_report']")
    entry.wait_for()
    assert "version 1" in entry.inner_text()
    entry.locator("a").click()
    app.wait_for_selector("#versions tr[data-version='1']")
    assert "first draft" in app.locator("#versions tr[data-version='1']").inner_text()
    assert "weekly_report.py" in app.locator("#versions").inner_text()
    shot(app, "36-code-asset-versions")


def test_a_code_asset_shows_the_diff_between_versions_and_restores_one(login, demo_hub, shot):
    page = login("alice")
    sid = space_id(page)
    asset = next(a for a in api(page, f"spaces/{sid}/code-assets")["body"]["items"] if a["name"] == "weekly_report")
    saved = api(page, f"spaces/{sid}/code-assets", "POST", {
        "name": "weekly_report", "message": "per store",
        "files": {"weekly_report.py": 'print("weekly report per store")\n'}})
    assert saved["status"] == 201 and saved["body"]["version"]["number"] == 2
    page.goto(page.url.split("#")[0] + f"#/spaces/{sid}/code-assets/{asset['id']}")
    diff = page.locator("#diff")
    diff.locator(".add").first.wait_for()
    assert diff.locator(".del").inner_text().strip() == '-print("weekly report")'
    assert diff.locator(".add", has_text="per store").count() == 1
    shot(page, "37-code-asset-diff")

    page.locator("#versions tr[data-version='1'] [data-action=restore]").click()
    page.fill("#restore-into", "restored")
    page.locator("dialog .primary").click()
    page.locator("#flash.flash-ok", has_text="Restored version 1").wait_for()
    restored = next((demo_hub.var / "spaces-home" / "alice").glob("*/restored/weekly_report.py"))
    assert restored.read_text() == 'print("weekly report")\n'
