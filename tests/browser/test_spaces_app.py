"""The pages a person uses, in a real Chromium against the embedded default: the hub's
login and home pages, the Spaces app and the JupyterLab sidebar.

The tests of this module share one hub and run in order, as one working day: alice
logs in, creates a space, meets the space limit, activates, works in JupyterLab,
invites bob and switches space; carol finds her space locked; the admin reads the
audit log. Each page is saved under ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow

#: a session start on a busy machine: a wait, not an assertion on time
SPAWN_WAIT = 240_000

CREATE_JS = """async ({names}) => {
  const cfg = JSON.parse(document.getElementById('spaces-config').textContent);
  const ids = [];
  for (const name of names) {
    const r = await fetch(cfg.api + 'spaces', {method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'X-XSRFToken': cfg.xsrf},
      body: JSON.stringify({display_name: name, tools: ['jupyterlab']})});
    if (r.status !== 201) throw new Error(await r.text());
    ids.push((await r.json()).id);
  }
  return ids;
}"""

DELETE_JS = """async ({ids}) => {
  const cfg = JSON.parse(document.getElementById('spaces-config').textContent);
  for (const id of ids) {
    await fetch(cfg.api + 'spaces/' + id, {method: 'DELETE', credentials: 'same-origin',
      headers: {'X-XSRFToken': cfg.xsrf}});
  }
}"""

API_JS = """async ({path, method, xsrf}) => {
  const cfg = JSON.parse(document.getElementById('spaces-config').textContent);
  const headers = {'Content-Type': 'application/json'};
  if (xsrf) headers['X-XSRFToken'] = cfg.xsrf;
  const r = await fetch(cfg.api + path, {method, headers, credentials: 'same-origin',
    body: method === 'GET' ? undefined : JSON.stringify({display_name: 'Forged'})});
  return {status: r.status, body: await r.text()};
}"""


def api(page, path, method="GET", xsrf=True):
    return page.evaluate(API_JS, {"path": path, "method": method, "xsrf": xsrf})


def card(page, slug):
    return page.locator(f".card[data-space='{slug}']")


def test_login_page_names_the_demo_users(demo_hub, new_page, shot):
    page = new_page()
    page.goto(f"{demo_hub.url}/hub/login")
    demo = page.locator(".spaces-demo")
    for user in ("alice", "bob", "carol", "dave", "admin"):
        assert demo.locator(f"button[data-user='{user}']").is_visible()
    assert "locked" in demo.inner_text()
    shot(page, "01-login")
    # a demo user's name fills the form
    page.click(".spaces-demo button[data-user='alice']")
    assert page.input_value("#username_input") == "alice"
    page.fill("#password_input", demo_hub.password)
    with page.expect_navigation(url=re.compile(r"/services/spaces/")):
        page.click("#login_submit")
    page.wait_for_selector(".card")
    assert page.locator("#view h1").inner_text() == "My spaces"
    assert card(page, "retail-forecasting").is_visible()
    assert card(page, "store-footprint").locator(".badge-workbench").is_visible()
    shot(page, "02-my-spaces")


def test_app_pages_send_a_strict_content_security_policy(login, demo_hub):
    page = login("alice")
    response = page.goto(f"{demo_hub.url}/services/spaces/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'self'" in csp


def test_a_forged_write_without_the_xsrf_token_changes_nothing(login):
    page = login("alice")
    before = api(page, "spaces")
    forged = api(page, "spaces", "POST", xsrf=False)
    assert forged["status"] in (401, 403), forged
    assert api(page, "spaces")["body"] == before["body"]


def test_alice_creates_a_space_with_inline_and_server_errors(login, shot):
    page = login("alice")
    page.click("#new-space")
    page.wait_for_selector("#spec-form")
    assert "space 3 of the 15" in page.inner_text("#limit-note")
    # nothing typed: told next to the field, nothing sent
    page.click("#save")
    assert page.inner_text("#display_name-error") == "Give the space a name."
    assert page.get_attribute("#display_name", "aria-invalid") is not None
    page.fill("#display_name", "Quarterly sales")
    assert page.input_value("#slug") == "quarterly-sales"
    assert page.inner_text("#display_name-error") == ""
    # the picker shows alice's subscription to each product
    product = page.locator("fieldset.product[data-product='retail-sales']")
    assert "subscribed (full)" in product.inner_text()
    product.locator("legend input[type=checkbox]").check()
    page.locator("label.check", has_text="SQL Lab").locator("input").check()
    # a slug alice already uses: the server's answer appears under the slug field
    page.fill("#slug", "retail-forecasting")
    page.click("#save")
    page.wait_for_selector("#slug-error:not(:empty)")
    assert "you already own a space with the slug" in page.inner_text("#slug-error")
    shot(page, "03-new-space-errors")
    page.fill("#slug", "quarterly-sales")
    page.click("#save")
    page.wait_for_url(re.compile(r"#/spaces/\d+$"))
    page.wait_for_selector("#view h1:has-text('Quarterly sales')")
    assert page.locator("#access", has_text="Workbench").is_visible()
    assert "retail-sales" in page.inner_text("#view")
    shot(page, "04-space-created")


def test_alice_edits_a_spec_and_finds_people_to_invite(login, shot):
    page = login("alice")
    card(page, "store-footprint").locator("h2 a").click()
    page.wait_for_selector("#invite")
    # people are suggested from alice's organization only
    page.fill("#invite-user", "o")
    page.wait_for_function("() => document.querySelectorAll('#invite-user-options option').length > 0")
    suggested = page.eval_on_selector_all("#invite-user-options option", "os => os.map(o => o.value)")
    assert "bob" in suggested and "carol" in suggested and "dave" not in suggested
    page.click("a.button:has-text('Edit')")
    page.wait_for_selector("#spec-form")
    page.fill("#workers", "3")
    assert "allows 0 to 2 workers" in page.inner_text("#workers-error")
    assert page.get_attribute("#workers", "aria-invalid") is not None
    shot(page, "05-edit-errors")
    page.fill("#workers", "1")
    assert page.inner_text("#workers-error") == ""
    page.click("#save")
    page.wait_for_url(re.compile(r"#/spaces/\d+$"))
    page.wait_for_selector("#view h2:has-text('Spec')")
    assert "1 workers" in page.inner_text("#view")


def test_the_sixteenth_space_is_refused_before_submitting(login, shot):
    page = login("alice")
    owned = int(re.search(r"You own (\d+) of 15", page.inner_text("#limit-note")).group(1))
    fillers = page.evaluate(CREATE_JS, {"names": [f"Scratch {i}" for i in range(15 - owned)]})
    try:
        page.reload()
        page.wait_for_selector(".card")
        assert "You own 15 of 15 spaces" in page.inner_text("#limit-note")
        assert page.locator("#new-space").is_disabled()
        shot(page, "05-space-limit-list")
        posts = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        page.goto(page.url.split("#")[0] + "#/spaces/new")
        page.wait_for_selector("#spec-form")
        assert "one too many" in page.inner_text("#limit-note")
        assert "15 of 15" in page.inner_text("#display_name-error")
        page.fill("#display_name", "Sixteenth")
        assert page.locator("#save").is_disabled()
        assert posts == []
        shot(page, "06-space-limit-form")
    finally:
        page.evaluate(DELETE_JS, {"ids": fillers})


def test_alice_activates_and_watches_progress(login, demo_hub, shot):
    page = login("alice")
    card(page, "quarterly-sales").locator("[data-action=activate]").click()
    page.wait_for_selector("#progress:not([hidden])")
    # the hub's own spawn events, relayed live by the service
    page.wait_for_selector("#progress-log li:has-text('Server requested')")
    shot(page, "07-activation-progress")
    page.wait_for_selector("#open-session", timeout=SPAWN_WAIT)
    assert page.locator("#open-session").inner_text() == "Open JupyterLab"  # a workbench
    assert page.locator("#view h1 .badge-active").is_visible()
    tiles = page.locator("#tool-tiles li.tile")
    tiles.first.wait_for()
    assert sorted(tiles.evaluate_all("els => els.map(e => e.dataset.tool)")) == ["jupyterlab", "sqllab"]
    shot(page, "08-space-active")
    # the hub's home page lists the session with its state
    page.goto(f"{demo_hub.url}/hub/home")
    session = page.locator(f"#space-sessions li[data-space='{server_of(demo_hub, 'quarterly-sales')}']")
    assert "active" in session.inner_text()
    assert page.locator("#open-spaces-app").is_visible()
    shot(page, "09-hub-home")


def server_of(demo_hub, slug: str) -> str:
    """The JupyterHub server name of alice's space ``slug``."""
    from sqlalchemy import select

    from jupyterhub_spaces import orm, policy
    from jupyterhub_spaces.store import Store

    store = Store(f"sqlite:///{demo_hub.var / 'spaces.sqlite'}")
    try:
        with store.transaction() as db:
            alice = select(orm.User.id).where(orm.User.name == "alice").scalar_subquery()
            return policy.server_name(db.scalar(
                select(orm.Space.id).where(orm.Space.slug == slug, orm.Space.owner_id == alice)))
    finally:
        store.dispose()


def open_sidebar(page):
    # a session opens on the Spaces panel by itself: no click
    page.wait_for_selector("#jupyterhub-spaces-panel .jp-SpacesPanel-current", timeout=120_000)


def test_sidebar_shows_the_space_and_invites_bob(login, demo_hub, shot):
    page = login("alice")
    page.goto(f"{demo_hub.url}/user/alice/{server_of(demo_hub, 'quarterly-sales')}/lab")
    open_sidebar(page)
    panel = page.locator("#jupyterhub-spaces-panel")
    assert panel.locator(".jp-SpacesPanel-current").inner_text().count("Quarterly sales") == 1
    assert panel.locator(".jp-SpacesPanel-current .jp-mod-workbench").is_visible()
    assert panel.locator("li[data-user='alice']", has_text="owner").is_visible()
    assert panel.locator("li[data-tool='sqllab']").is_visible()
    others = panel.locator(".jp-SpacesPanel-others")
    assert others.locator("li[data-space='retail-forecasting']").is_visible()
    panel.locator("input[name=user]").fill("bob")
    panel.locator("select[name=role]").select_option("viewer")
    panel.locator(".jp-SpacesPanel-invite button[type=submit]").click()
    bob = panel.locator("li[data-user='bob']")
    bob.wait_for()
    assert "viewer" in bob.inner_text()
    # bob's spaces-level subscription shows: the space is a sandbox for him
    assert bob.locator(".jp-mod-sandbox").is_visible()
    shot(page, "10-jupyterlab-sidebar")
    # inviting someone of another organization is refused next to the field
    panel.locator("input[name=user]").fill("dave")
    panel.locator(".jp-SpacesPanel-invite button[type=submit]").click()
    panel.locator(".jp-SpacesPanel-fielderror:not(:empty)").wait_for()
    assert "may invite" in panel.locator(".jp-SpacesPanel-fielderror").inner_text()
    assert panel.locator("li[data-user='dave']").count() == 0


def test_switching_from_the_sidebar_suspends_the_current_space(login, demo_hub, shot):
    page = login("alice")
    # JupyterLab's own build check (lab/api/build) can take seconds; a switch while it
    # is still in flight stops the server under it, and JupyterLab reports that
    # request's 503 as an unhandled error of its own: switch once it has answered
    with page.expect_response(lambda r: "/lab/api/build" in r.url, timeout=SPAWN_WAIT):
        page.goto(f"{demo_hub.url}/user/alice/{server_of(demo_hub, 'quarterly-sales')}/lab")
    open_sidebar(page)
    warnings = []

    def accept(dialog):
        warnings.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.locator(".jp-SpacesPanel-others li[data-space='retail-forecasting'] button").click()
    page.wait_for_url(re.compile(r"/services/spaces/#/spaces/\d+$"), timeout=SPAWN_WAIT)
    assert "Quarterly sales" in warnings[0] and "suspended" in warnings[0]
    page.wait_for_selector("#open-session", timeout=SPAWN_WAIT)
    assert page.locator("#view h1", has_text="Retail forecasting").is_visible()
    # carol is a viewer there without a weather subscription: the owner sees why
    carol = page.locator("#collaborators li[data-user='carol']")
    assert "weather" in carol.inner_text()
    shot(page, "11-switched")
    page.click("nav a[data-nav=spaces]")
    page.wait_for_selector(".card")
    assert card(page, "quarterly-sales").get_attribute("data-state") == "suspended"
    assert card(page, "retail-forecasting").get_attribute("data-state") == "active"
    shot(page, "12-my-spaces-after-switch")


def add_derived_asset(demo_hub) -> None:
    """A published table made from both demo products, added to store-footprint (as a
    publish from retail-forecasting would leave it)."""
    from sqlalchemy import select

    from jupyterhub_spaces import orm
    from jupyterhub_spaces.store import Store, record_lineage

    store = Store(f"sqlite:///{demo_hub.var / 'spaces.sqlite'}")
    try:
        with store.transaction() as db:
            space = db.scalar(select(orm.Space).where(orm.Space.slug == "store-footprint"))
            source = db.scalar(select(orm.Space).where(orm.Space.slug == "retail-forecasting"))
            products = db.scalars(select(orm.Product).where(orm.Product.name.in_(["retail-sales", "weather"]))).all()
            asset = orm.Asset(name="sales-forecast", kind="table", location="sales_forecast", derived=True,
                              owner_org_id=products[0].owner_org_id, source_space_id=source.id, created_by="alice")
            db.add(asset)
            db.flush()
            record_lineage(db, asset.id, [p.id for p in products], [])
            db.add(orm.SpaceAsset(space_id=space.id, asset_id=asset.id, position=9))
    finally:
        store.dispose()


def test_a_derived_asset_shows_its_lineage(login, demo_hub, shot):
    add_derived_asset(demo_hub)
    page = login("alice")
    card(page, "store-footprint").locator("h2 a").click()
    figure = page.locator("#lineage figure")
    figure.wait_for()
    assert "sales-forecast" in figure.inner_text()
    image = figure.locator("img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    shot(page, "13-lineage")


def test_suspend_and_delete_ask_first_and_say_what_is_kept(login, shot):
    page = login("alice")
    # suspend the active space: a confirmation, then its state changes in place
    card(page, "retail-forecasting").locator("h2 a").click()
    page.click("#suspend")
    dialog = page.locator("dialog.dialog")
    assert "files in the space are kept" in dialog.inner_text()
    dialog.get_by_role("button", name="Suspend").click()
    page.wait_for_selector("#activate", timeout=120_000)
    assert page.locator("#view h1 .badge-active").count() == 0
    # delete a space: cancelling keeps it; confirming removes it and says what stays
    [scratch] = page.evaluate(CREATE_JS, {"names": ["Throwaway"]})
    page.goto(page.url.split("#")[0] + f"#/spaces/{scratch}")
    page.click("#delete")
    dialog = page.locator("dialog.dialog")
    assert "Kept:" in dialog.inner_text() and "working files" in dialog.inner_text()
    shot(page, "13-delete-confirmation")
    dialog.get_by_role("button", name="Cancel").click()
    assert page.locator("#view h1", has_text="Throwaway").is_visible()
    page.click("#delete")
    page.locator("dialog.dialog").get_by_role("button", name="Delete space").click()
    page.wait_for_selector(".card")
    assert card(page, "throwaway").count() == 0
    assert api(page, f"spaces/{scratch}")["status"] == 404


def test_carol_sees_her_space_locked_and_requests_the_subscription(login, shot):
    page = login("carol")
    locked = card(page, "retail-forecasting")
    assert locked.get_attribute("data-mode") == "locked"
    assert locked.locator("[data-action=activate]").count() == 0
    locked.locator("h2 a").click()
    page.wait_for_selector("#access")
    access = page.locator("#access")
    assert "locked for you" in access.inner_text()
    missing = access.locator("li[data-name='weather']")
    assert "product “weather”" in missing.inner_text()
    assert page.locator("#activate").count() == 0
    shot(page, "14-carol-locked")
    missing.get_by_role("button", name="Request access").click()
    missing.locator(".badge-requested").wait_for()
    assert "request sent" in missing.inner_text()
    shot(page, "14-carol-requested")


def test_admin_reads_the_audit_log(login, shot):
    page = login("admin")
    page.click("nav a[data-nav=audit]")
    page.wait_for_selector("#view table tbody tr")
    rows = page.locator("#view tbody tr")
    text = rows.all_inner_texts()
    assert any("space.create" in t and "alice" in t for t in text)
    assert any("subscription.request" in t and "carol" in t for t in text)
    page.select_option("#audit-outcome", "refused")
    page.wait_for_function("() => [...document.querySelectorAll('#view tbody tr')].every(r => r.innerText.includes('refused') || r.innerText.includes('No events'))")
    shot(page, "15-audit-log")


def test_catalog_shows_subscriptions(login, shot):
    page = login("bob")
    page.click("nav a[data-nav=catalog]")
    page.wait_for_selector("#view table")
    rows = page.locator("#view tbody tr")
    assert rows.count() >= 5
    assert "spaces only" in page.locator("tr[data-kind=product][data-name='retail-sales']").inner_text()
    # bob's spaces-only product covers its assets only that far
    assert "via its product (spaces only)" in page.locator("tr[data-kind=asset][data-name='stores']").inner_text()
    shot(page, "16-catalog")


def test_keyboard_alone_reaches_the_new_space_form(login):
    page = login("bob")
    for _ in range(25):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "new-space":
            break
    else:
        pytest.fail("Tab never reached the New space button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#spec-form")
    assert page.evaluate("document.activeElement.tagName") == "H1"


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)], ids=["desktop", "narrow"])
def test_pages_fit_the_window(login, shot, width, height):
    page = login("alice", width, height)
    for route, name in [("#/", "spaces"), ("#/spaces/new", "new"), ("#/catalog", "catalog")]:
        page.goto(page.url.split("#")[0] + route)
        page.wait_for_selector("#view h1")
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{route} scrolls sideways by {overflow}px at {width}px"
        shot(page, f"17-{name}-{width}")
