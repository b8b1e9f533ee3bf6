// The Spaces app's pure rules (static/model.js): spec checks shown before submitting,
// slugs, states and subscription labels. Run by tests/unit/test_app_model_js.py.
import { test } from "node:test";
import assert from "node:assert/strict";

// the app's module as a .mjs copy (APP_MODEL, a file URL), so any Node reads it as ESM
const { checkSpec, openLabel, sessionUrl, slugify, stateOf, subscriptionOf, subscriptionText, missingOf } = await import(process.env.APP_MODEL);

const profiles = [
  { name: "small", display_name: "Small", min_workers: 0, max_workers: 2 },
  { name: "large", display_name: "Large", min_workers: 1, max_workers: 8 },
];
const good = { display_name: "Sales", slug: "sales", tools: ["jupyterlab"], profile: "small", workers: 1 };

test("a valid spec has no errors", () => {
  assert.deepEqual(checkSpec(good, { profiles, owned: 3, limit: 15, creating: true }), {});
});

test("each invalid field gets its own message", () => {
  const errors = checkSpec(
    { display_name: "  ", slug: "9lives", tools: [], profile: "large", workers: 0 },
    { profiles, owned: 0, limit: 15, creating: true }
  );
  assert.deepEqual(Object.keys(errors).sort(), ["display_name", "slug", "tools", "workers"]);
  assert.match(errors.workers, /Large allows 1 to 8 workers/);
  assert.ok(checkSpec({ ...good, profile: "huge" }, { profiles, owned: 0, limit: 15 }).profile);
});

test("the limit refuses a new space before it is sent, not an edit", () => {
  const at = { profiles, owned: 15, limit: 15 };
  assert.match(checkSpec(good, { ...at, creating: true }).display_name, /15 of 15/);
  assert.deepEqual(checkSpec(good, { ...at, creating: false }), {});
  assert.deepEqual(checkSpec(good, { profiles, owned: 14, limit: 15, creating: true }), {});
});

test("slugs are safe short names", () => {
  assert.equal(slugify("Quarterly Sales 2024!"), "quarterly-sales-2024");
  assert.equal(slugify("2024 plan"), "plan");
  assert.equal(slugify("Ünïcode café"), "unicode-cafe");
  assert.ok(slugify("x".repeat(80)).length <= 30);
  for (const slug of ["a", "sales-q1", "x1-y2"]) assert.deepEqual(checkSpec({ ...good, slug }, { profiles }), {});
  for (const slug of ["-a", "a-", "a--b", "A", "a_b", "a".repeat(31)]) assert.ok(checkSpec({ ...good, slug }, { profiles }).slug, slug);
});

test("session states read from the status answer", () => {
  assert.equal(stateOf({ status: { state: "active" } }), "active");
  assert.equal(stateOf({ status: { state: "inactive" } }), "idle");
  assert.equal(stateOf({}), "idle");
  assert.equal(stateOf({ status: { state: "failed", reason: "x" } }), "failed");
});

test("an asset is covered by its product's active subscription", () => {
  const product = { subscription: { level: "spaces", status: "active", expired: false } };
  assert.equal(subscriptionOf(product), "spaces");
  assert.equal(subscriptionOf({ subscription: null }, product), "covered");
  assert.equal(subscriptionOf({ subscription: null }, { subscription: null }), "none");
  assert.equal(subscriptionOf({ subscription: { level: "full", status: "active", expired: true } }), "expired");
  assert.equal(subscriptionOf({ subscription: { level: "full", status: "requested" } }), "requested");
  assert.equal(subscriptionText("covered", product), "via its product (spaces only)");
  assert.equal(subscriptionText("covered", { subscription: { level: "full", status: "active" } }), "via its product");
  assert.equal(subscriptionText("none"), "not subscribed");
  const expiredProduct = { subscription: { level: "full", status: "active", expired: true } };
  assert.equal(subscriptionOf({ subscription: null }, expiredProduct), "none");
});

test("missing subscriptions keep the service's message", () => {
  const [m] = missingOf({ missing: [{ kind: "product", id: 2, name: "weather", reason: "missing", message: "no subscription to product 'weather'" }] });
  assert.deepEqual([m.kind, m.name, m.message], ["product", "weather", "no subscription to product 'weather'"]);
  assert.deepEqual(missingOf(undefined), []);
});

test("a session's URL names the space's server, never its slug", () => {
  const space = { id: 7, slug: "sales", server: "space-7" };
  assert.equal(sessionUrl(space, "/jhub/hub/", "dave"), "/jhub/user/dave/space-7/lab");
  assert.equal(sessionUrl({ ...space, status: { url: "/jhub/user/dave/space-7/" } }, "/jhub/hub/", "dave"),
    "/jhub/user/dave/space-7/");
});

test("an active sandbox opens its desktop, a workbench JupyterLab", () => {
  assert.equal(openLabel("sandbox"), "Open desktop");
  assert.equal(openLabel("workbench"), "Open JupyterLab");
});
