// The Spaces app: routes after '#', each route a view that loads what it shows from
// the API and renders it with plain DOM. No page reload for anything, progress
// included.

import { ApiError, all, api, config, stream } from "./api.js";
import { ago, badge, confirmDialog, flash, h, mount } from "./dom.js";
import {
  ROLES,
  ROLE_HELP,
  SUBSCRIPTION_TEXT,
  TOOL_NAMES,
  checkSpec,
  collaboratorsOf,
  failureOf,
  ids,
  missingOf,
  modeOf,
  names,
  openLabel,
  sessionUrl,
  slugify,
  stateOf,
  subscriptionOf,
  subscriptionText,
} from "./model.js";
import { codeAssetView, codeAssetsPanel, taskView, tasksPanel } from "./tasks.js";

const MODE_HELP = {
  workbench: "Full subscriptions: use and export the data.",
  sandbox: "A spaces-only subscription: the data stays inside a locked-down desktop.",
  locked: "A subscription is missing or expired: see what to request.",
  not_member: "You are not a member of this space.",
};

const STATE_HELP = {
  active: "Running now",
  starting: "Starting",
  stopping: "Suspending",
  suspended: "Suspended: its files are kept; activate to continue",
  failed: "The last activation failed",
  idle: "Not running",
};

let cleanup = [];
/** a space to activate as soon as its page is shown (from a card's button) */
let activateOnArrival = null;

function onLeave(fn) {
  cleanup.push(fn);
}

// --------------------------------------------------------------------------
// routing

const routes = [
  [/^#?\/?$/, listView],
  [/^#\/spaces\/new$/, (m) => editView(null)],
  [/^#\/spaces\/(\d+)\/edit$/, (m) => editView(Number(m[1]))],
  [/^#\/spaces\/(\d+)$/, (m) => spaceView(Number(m[1]))],
  [/^#\/spaces\/(\d+)\/tasks\/(\d+)(?:\?run=(\d+))?$/, (m) => taskView(Number(m[1]), Number(m[2]), onLeave, m[3])],
  [/^#\/spaces\/(\d+)\/code-assets\/(\d+)$/, (m) => codeAssetView(Number(m[1]), Number(m[2]))],
  [/^#\/catalog$/, catalogView],
  [/^#\/audit$/, auditView],
];

async function route() {
  for (const fn of cleanup) fn();
  cleanup = [];
  const hash = window.location.hash || "#/";
  for (const link of document.querySelectorAll("[data-nav]")) {
    const section = hash.startsWith("#/catalog") ? "catalog" : hash.startsWith("#/audit") ? "audit" : "spaces";
    link.toggleAttribute("aria-current", link.dataset.nav === section);
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
  }
  for (const [pattern, view] of routes) {
    const m = hash.match(pattern);
    if (m) {
      try {
        await view(m);
      } catch (e) {
        mount("view", h("section.panel.error-box", {}, h("h1", {}, "Something went wrong"), h("p", {}, e.message),
          h("p", {}, h("a.button", { href: "#/" }, "Back to my spaces"))));
      }
      const heading = document.querySelector("#view h1");
      if (heading) {
        heading.tabIndex = -1;
        heading.focus({ preventScroll: true });
      }
      return;
    }
  }
  mount("view", h("section.panel", {}, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "My spaces"))));
}

window.addEventListener("hashchange", route);

// --------------------------------------------------------------------------
// my spaces

async function loadMe() {
  try {
    return await api("me");
  } catch (e) {
    return { name: config.user, spaces_owned: null, space_limit: config.spaceLimit };
  }
}

/** Each space's session state for me (one status request per space, in parallel). */
async function withStatus(spaces) {
  await Promise.all(spaces.map(async (s) => {
    try {
      s.status = await api(`spaces/${s.id}/status`);
    } catch (e) {
      s.status = { state: "unknown", reason: e.message };
    }
  }));
  return spaces;
}

async function listView() {
  const [me, spaces] = await Promise.all([loadMe(), all("spaces").then(withStatus)]);
  document.title = "My spaces · Spaces";
  const owned = me.spaces_owned ?? spaces.filter((s) => s.owner === config.user).length;
  const limit = me.space_limit ?? config.spaceLimit;
  const full = owned >= limit;
  const active = spaces.find((s) => ["active", "starting"].includes(stateOf(s)));

  const newButton = full
    ? h("button.primary", { disabled: true, "aria-describedby": "limit-note", id: "new-space" }, "New space")
    : h("a.button.primary", { href: "#/spaces/new", id: "new-space" }, "New space");

  mount("view",
    h("div.page-head", {},
      h("div", {}, h("h1", {}, "My spaces"),
        h("p.muted", {}, `Welcome, ${me.display_name || me.name || config.user}${me.org ? ` (${me.org})` : ""}.`)),
      h("div.head-actions", {},
        h("div.limit", { id: "limit-note", class: full ? "limit-full" : owned >= limit - 2 ? "limit-near" : "" },
          h("meter", { min: 0, max: limit, value: owned, low: limit - 2, high: limit - 1, optimum: 0, "aria-label": "Spaces owned" }),
          h("span", {}, full
            ? `You own ${owned} of ${limit} spaces: delete one to create another.`
            : `You own ${owned} of ${limit} spaces.`)),
        newButton)),
    active ? h("p.banner", {}, `Active now: `, h("a", { href: `#/spaces/${active.id}` }, active.display_name),
      " (you can run one space at a time)") : null,
    spaces.length
      ? h("ul.cards", { "aria-label": "Spaces" }, spaces.map((s) => spaceCard(s)))
      : h("section.panel.empty", {}, h("h2", {}, "No spaces yet"),
          h("p", {}, "A space brings together data products, tools and people. Create one to start."))
  );
}

function stateBadges(space) {
  const state = stateOf(space);
  const mode = modeOf(space);
  return h("span.badges", {},
    state !== "idle" ? badge(state, state, STATE_HELP[state]) : null,
    badge(mode, mode === "not_member" ? "not a member" : mode, MODE_HELP[mode]));
}

function spaceCard(space) {
  const state = stateOf(space);
  const mode = modeOf(space);
  const link = `#/spaces/${space.id}`;
  return h("li.card", { dataset: { space: space.slug, state, mode } },
    h("div.card-head", {},
      h("h2", {}, h("a", { href: link }, space.display_name)),
      stateBadges(space)),
    h("p.muted.small", {}, `${space.slug} · owner ${space.owner}${space.role && space.role !== "owner" ? ` · you: ${space.role}` : ""}`),
    h("dl.facts", {},
      h("dt", {}, "Data"), h("dd", {}, [...names(space.products), ...names(space.assets)].join(", ") || "none"),
      h("dt", {}, "Tools"), h("dd", {}, (space.tools || []).map((t) => TOOL_NAMES[t] || t).join(", ") || "none"),
      h("dt", {}, "People"), h("dd", {}, String(collaboratorsOf(space).length || 1))),
    state === "failed" && failureOf(space) ? h("p.error-text.small", {}, failureOf(space)) : null,
    mode === "locked" ? h("p.small.locked-text", {}, "Locked: ", h("a", { href: link }, "see the missing subscriptions")) : null,
    h("div.card-actions", {},
      state === "active" ? h("a.button.primary", { href: sessionUrl(space, config.hubPrefix, config.user) }, "Open") : null,
      ["idle", "suspended", "failed"].includes(state) && ["workbench", "sandbox"].includes(mode)
        ? h("button.primary", { "data-action": "activate", onclick: () => {
            // the detail page starts it and shows the progress
            activateOnArrival = space.id;
            window.location.hash = link;
          } }, "Activate")
        : null,
      h("a.button", { href: link }, "Details")));
}

// --------------------------------------------------------------------------
// one space

async function spaceView(id) {
  const space = await api(`spaces/${id}`);
  await withStatus([space]);
  let access = space.access;
  try {
    access = await api(`spaces/${id}/access`);
  } catch (e) {
    // shown from the space's own summary
  }
  document.title = `${space.display_name} · Spaces`;
  const state = stateOf(space);
  const mode = (access && access.mode) || modeOf(space);
  const role = (access && access.role) || space.role;
  const canEdit = role === "owner" || role === "editor" || config.admin;
  const isOwner = role === "owner";

  const progress = h("section.panel.progress", { id: "progress", hidden: true, "aria-live": "polite" },
    h("h2", {}, "Activation"),
    h("progress", { max: 100, value: 0, id: "progress-bar" }),
    h("ol.log", { id: "progress-log" }));
  const tools = h("section.panel", { id: "tools", hidden: state !== "active" },
    h("h2", {}, "Tools"), h("ul.tiles", { id: "tool-tiles" }));

  const actions = h("div.head-actions", {});
  if (mode === "sandbox" || mode === "workbench") {
    if (state === "active") {
      actions.append(
        h("a.button.primary", { href: sessionUrl(space, config.hubPrefix, config.user), id: "open-session" }, openLabel(mode)),
        h("button", { id: "suspend", onclick: () => suspend(space) }, "Suspend"));
    } else if (state === "starting") {
      actions.append(h("button.primary", { disabled: true }, "Starting…"));
    } else if (state === "stopping") {
      actions.append(h("button", { disabled: true }, "Suspending…"));
      // look again shortly: the page changes by itself when the session has stopped
      const timer = window.setTimeout(route, 1500);
      onLeave(() => window.clearTimeout(timer));
    } else {
      actions.append(h("button.primary", { id: "activate", onclick: () => activate(space, false) }, "Activate"));
    }
  }
  if (canEdit) actions.append(h("a.button", { href: `#/spaces/${id}/edit` }, "Edit"));
  if (isOwner || config.admin) actions.append(h("button.danger-outline", { id: "delete", onclick: () => remove(space) }, "Delete"));

  mount("view",
    h("p.crumbs", {}, h("a", { href: "#/" }, "My spaces"), " / ", space.display_name),
    h("div.page-head", {},
      h("div", {},
        h("h1", {}, space.display_name, " ", stateBadges(Object.assign({}, space, { access: { mode } }))),
        h("p.muted", {}, `${space.slug} · owned by ${space.owner}${role ? ` · your role: ${role}` : ""}`)),
      actions),
    state === "failed" ? h("p.banner.banner-error", {}, "The last activation failed: ", failureOf(space) || "see the hub log") : null,
    accessPanel(space, access, mode),
    progress,
    tools,
    h("div.columns", {},
      specPanel(space),
      collaboratorsPanel(space, access, isOwner)),
    role ? tasksPanel(space, role === "owner" || role === "editor", onLeave) : null,
    role ? codeAssetsPanel(space, role === "owner" || role === "editor") : null,
    lineagePanel(space));

  if (state === "starting") followProgress(space);
  if (state === "active") pollTools(space);
  if (activateOnArrival === space.id) {
    activateOnArrival = null;
    if (["idle", "suspended", "failed"].includes(state) && (mode === "sandbox" || mode === "workbench")) activate(space, false);
  }
}

function accessPanel(space, access, mode) {
  if (mode === "locked") {
    const missing = missingOf(access);
    return h("section.panel.locked", { id: "access" },
      h("h2", {}, "This space is locked for you"),
      h("p", {}, "Every product and asset of a space needs an active subscription before you can activate it. Missing:"),
      h("ul.missing", {}, missing.map((m) =>
        h("li", { dataset: { kind: m.kind, name: m.name || "" } },
          h("strong", {}, `${m.kind} “${m.name || m.id}”`), " — ", m.message, " ",
          m.reason === "requested"
            ? badge("requested", "request pending")
            : h("button.small", { onclick: (e) => requestSubscription(m, e.currentTarget) }, "Request access")))));
  }
  if (mode === "sandbox") {
    return h("section.panel.note", { id: "access" }, h("strong", {}, "Sandbox. "),
      (access && access.reason) || MODE_HELP.sandbox);
  }
  if (mode === "workbench") {
    return h("section.panel.note.ok", { id: "access" }, h("strong", {}, "Workbench. "), MODE_HELP.workbench);
  }
  return null;
}

async function requestSubscription(target, button) {
  button.disabled = true;
  try {
    await api("subscriptions", "POST", { [target.kind === "product" ? "product_id" : "asset_id"]: target.id, level: "full" });
    button.replaceWith(badge("requested", "request sent"));
    flash(`Requested a subscription to ${target.kind} “${target.name}”. An admin will grant it.`);
  } catch (e) {
    button.disabled = false;
    flash(e.message, "error");
  }
}

function specPanel(space) {
  const profile = config.profiles.find((p) => p.name === space.profile);
  return h("section.panel", {},
    h("h2", {}, "Spec"),
    h("dl.facts", {},
      h("dt", {}, "Products"), h("dd", {}, names(space.products).join(", ") || "none"),
      h("dt", {}, "Assets"), h("dd", {}, names(space.assets).join(", ") || "none"),
      h("dt", {}, "Tools"), h("dd", {}, (space.tools || []).map((t) => TOOL_NAMES[t] || t).join(", ")),
      h("dt", {}, "Machine"), h("dd", {}, `${profile ? profile.display_name || profile.name : space.profile || "default"}, ${space.workers ?? 0} workers`)));
}

function collaboratorsPanel(space, access, canEdit) {
  const people = collaboratorsOf(space);
  const byUser = {};
  for (const c of (access && access.members) || []) byUser[c.user] = c;
  const list = h("ul.people", { id: "collaborators" }, people.map((p) => {
    const decision = byUser[p.user] || p.access;
    const lockedWhy = decision && decision.mode === "locked" ? missingOf(decision).map((m) => m.message).join("; ") : "";
    const roleCell = canEdit && p.role !== "owner"
      ? h("select", { "aria-label": `Role of ${p.user}`, onchange: (e) => changeRole(space, p.user, e.target.value) },
          ROLES.filter((r) => r !== "owner").map((r) => h("option", { value: r, selected: r === p.role }, r)))
      : h("span.role", { title: ROLE_HELP[p.role] }, p.role);
    return h("li", { dataset: { user: p.user } },
      h("span.person", {}, p.user),
      roleCell,
      decision ? badge(decision.mode, decision.mode === "locked" ? "locked" : decision.mode, lockedWhy || MODE_HELP[decision.mode]) : null,
      canEdit && p.role !== "owner"
        ? h("button.link", { "aria-label": `Remove ${p.user}`, onclick: () => removeCollaborator(space, p.user) }, "Remove")
        : null,
      lockedWhy ? h("span.why.small", {}, `Locked for ${p.user}: ${lockedWhy}`) : null);
  }));
  return h("section.panel", {},
    h("h2", {}, "Collaborators"),
    list,
    canEdit ? inviteForm(space) : null);
}

function userPicker(id, onPick) {
  const listId = `${id}-options`;
  const input = h("input", { id, type: "search", list: listId, autocomplete: "off", placeholder: "Search people in your organization" });
  const options = h("datalist", { id: listId });
  let timer = 0;
  input.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(async () => {
      const q = input.value.trim();
      if (!q) return;
      try {
        const users = await api(`users?q=${encodeURIComponent(q)}&limit=20`);
        const list = Array.isArray(users) ? users : users.items || [];
        options.replaceChildren(...list.map((u) => h("option", { value: u.name }, u.display_name && u.display_name !== u.name ? `${u.display_name}${u.org ? ` · ${u.org}` : ""}` : u.org || "")));
      } catch (e) {
        // suggestions only
      }
    }, 150);
  });
  if (onPick) input.addEventListener("change", () => onPick(input.value.trim()));
  return [input, options];
}

function inviteForm(space) {
  const [input, options] = userPicker("invite-user");
  const role = h("select", { id: "invite-role", "aria-label": "Role" }, ROLES.filter((r) => r !== "owner").map((r) => h("option", { value: r }, r)));
  const error = h("p.field-error", { id: "invite-error", role: "alert" });
  const form = h("form.inline", { id: "invite", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = "";
    const user = input.value.trim();
    if (!user) {
      error.textContent = "Type the name of a person to invite.";
      input.focus();
      return;
    }
    try {
      await api(`spaces/${space.id}/collaborators`, "POST", { user, role: role.value });
      flash(`Invited ${user} as ${role.value}.`);
      route();
    } catch (err) {
      error.textContent = (err.fields && (err.fields.user || err.fields.role)) || err.message;
    }
  } },
    h("label", { for: "invite-user" }, "Invite"), input, options, role,
    h("button.primary", { type: "submit" }, "Invite"), error);
  return form;
}

async function changeRole(space, user, role) {
  try {
    await api(`spaces/${space.id}/collaborators/${encodeURIComponent(user)}`, "PATCH", { role });
    flash(`${user} is now ${role}.`);
  } catch (e) {
    flash(e.message, "error");
    route();
  }
}

async function removeCollaborator(space, user) {
  const ok = await confirmDialog({ title: `Remove ${user}?`, body: h("p", {}, `${user} loses access to “${space.display_name}”. Their own files in it are kept.`), confirm: "Remove", danger: true });
  if (!ok) return;
  try {
    await api(`spaces/${space.id}/collaborators/${encodeURIComponent(user)}`, "DELETE");
    flash(`Removed ${user}.`);
    route();
  } catch (e) {
    flash(e.message, "error");
  }
}

function lineagePanel(space) {
  const derived = (space.assets || []).filter((a) => typeof a === "object" && (a.derived || a.source_space_id));
  if (!derived.length) return null;
  return h("section.panel", { id: "lineage" },
    h("h2", {}, "Lineage of derived assets"),
    derived.map((a) => h("figure.lineage", {},
      h("img", { src: `${config.api}assets/${a.id}/lineage.svg`, alt: `Lineage of ${a.name}: the products and assets it was made from` }),
      h("figcaption", {}, a.name))));
}

// --------------------------------------------------------------------------
// activation

async function activate(space, switching) {
  let answer;
  try {
    answer = await api(`spaces/${space.id}/activate${switching ? "?switch=true" : ""}`, "POST");
  } catch (e) {
    if (e.status === 409 && !switching) {
      const ok = await confirmDialog({
        title: "Another space is active",
        body: [h("p", {}, e.message), h("p", {}, `Switch to “${space.display_name}”? The active space is suspended first: its running kernels stop, its files are kept.`)],
        confirm: "Suspend it and switch",
      });
      if (ok) return activate(space, true);
      return;
    }
    flash(e.message, "error");
    return;
  }
  flash(`Activating “${space.display_name}”…`);
  const button = document.getElementById("activate");
  if (button) {
    button.disabled = true;
    button.textContent = "Starting…";
  }
  followProgress(Object.assign({}, space, answer || {}));
}

function followProgress(space) {
  const panel = document.getElementById("progress");
  const bar = document.getElementById("progress-bar");
  const log = document.getElementById("progress-log");
  if (!panel) return;
  panel.hidden = false;
  let finished = false;
  const finish = (ok, message) => {
    if (finished) return;
    finished = true;
    if (ok) {
      bar.value = 100;
      log.append(h("li.ok-text", {}, "Ready."));
      flash(`“${space.display_name}” is ready.`);
    } else {
      log.append(h("li.error-text", {}, message || "The activation failed."));
      flash(`Activation failed: ${message || "see the log"}`, "error");
    }
    window.setTimeout(route, ok ? 500 : 1500);
  };
  const s = stream(`spaces/${space.id}/progress`, (event) => {
    if (typeof event.progress === "number") bar.value = event.progress;
    if (event.message && !event.ready && !event.failed) {
      log.append(h("li", {}, event.message));
      log.lastChild.scrollIntoView({ block: "nearest" });
    }
    if (event.ready) finish(true);
    if (event.failed) finish(false, event.message);
  });
  onLeave(s.abort);
  onLeave(() => { finished = true; });
  // the session's state decides in the end: when the stream ends early or cannot be
  // read, watch the status until the session is up or has failed
  const watch = async () => {
    while (!finished) {
      await new Promise((r) => window.setTimeout(r, 1500));
      if (finished) return;
      try {
        const status = await api(`spaces/${space.id}/status`);
        if (status.state === "active") finish(true);
        else if (status.state === "failed") finish(false, status.reason);
        else if (status.state !== "starting" && status.state !== "stopping") finish(false, `the session is ${status.state}`);
        else if (bar.value < 90) bar.value = Math.max(bar.value, 10) + 5;
      } catch (e) {
        // keep watching: the service may be busy
      }
    }
  };
  s.done.then(watch, (e) => {
    if (e.name === "AbortError") return;
    log.append(h("li.muted", {}, "Live progress is not available; watching the session's state instead."));
    watch();
  });
}

function pollTools(space) {
  const tiles = document.getElementById("tool-tiles");
  let stopped = false;
  onLeave(() => { stopped = true; });
  const tick = async () => {
    if (stopped) return;
    let tools;
    let answer;
    try {
      answer = await api(`spaces/${space.id}/tools`);
      tools = answer.tools || answer.items || [];
    } catch (e) {
      tiles.replaceChildren(h("li.muted", {}, e.message));
      return;
    }
    for (const t of tools) {
      // JupyterLab is the session itself: ready as soon as the session is
      if (t.name === "jupyterlab" && t.status === "waiting" && answer.state === "active") {
        Object.assign(t, { status: "ready", url: sessionUrl(space, config.hubPrefix, config.user), reason: "" });
      }
    }
    tiles.replaceChildren(...tools.map((t) => {
      const ready = t.status === "ready" && t.url;
      return h("li.tile", { dataset: { tool: t.name, status: t.status } },
        h("strong", {}, TOOL_NAMES[t.name] || t.name),
        badge(t.status === "ready" ? "active" : t.status === "unavailable" ? "failed" : "starting", t.status),
        t.reason ? h("span.small.muted", {}, t.reason) : null,
        ready
          ? h("a.button.primary", { href: t.url, target: "_blank", rel: "noopener" }, "Launch")
          : h("button", { disabled: true }, t.status === "unavailable" ? "Unavailable" : "Waiting…"));
    }));
    if (tools.some((t) => t.status === "waiting")) window.setTimeout(tick, 2000);
  };
  tick();
}

async function suspend(space) {
  const ok = await confirmDialog({
    title: `Suspend “${space.display_name}”?`,
    body: h("p", {}, "Running kernels and tools stop. Your files in the space are kept and come back when you activate it again."),
    confirm: "Suspend",
  });
  if (!ok) return;
  try {
    await api(`spaces/${space.id}/suspend`, "POST");
    flash(`Suspended “${space.display_name}”.`);
    route();
  } catch (e) {
    flash(e.message, "error");
  }
}

async function remove(space) {
  const ok = await confirmDialog({
    title: `Delete “${space.display_name}”?`,
    body: [
      h("p", {}, "Removed: the space's spec and its list of collaborators. Nobody can activate it again."),
      h("p", { class: "kept" }, "Kept: the catalog's products and assets, assets published from this space with their lineage, the audit log, and each member's working files (an administrator can remove those)."),
    ],
    confirm: "Delete space",
    danger: true,
  });
  if (!ok) return;
  try {
    await api(`spaces/${space.id}`, "DELETE");
    flash(`Deleted “${space.display_name}”.`);
    window.location.hash = "#/";
  } catch (e) {
    flash(e.message, "error");
  }
}

// --------------------------------------------------------------------------
// create / edit

async function loadCatalog() {
  const answer = await api("catalog/products?limit=500");
  return Array.isArray(answer) ? answer : answer.items || answer.products || [];
}

async function editView(id) {
  const creating = id === null;
  const [me, catalog, space] = await Promise.all([
    loadMe(),
    loadCatalog(),
    creating ? Promise.resolve(null) : api(`spaces/${id}`),
  ]);
  const owned = me.spaces_owned ?? 0;
  const limit = me.space_limit ?? config.spaceLimit;
  document.title = `${creating ? "New space" : "Edit " + space.display_name} · Spaces`;
  const profiles = config.profiles;
  const spec = space
    ? {
        display_name: space.display_name,
        products: ids(space.products),
        assets: ids(space.assets),
        tools: space.tools || [],
        profile: space.profile,
        workers: space.workers ?? 0,
        collaborators: collaboratorsOf(space).filter((c) => c.role !== "owner"),
      }
    : {
        display_name: "",
        slug: "",
        products: [],
        assets: [],
        tools: ["jupyterlab"],
        profile: profiles.length ? profiles[0].name : "",
        workers: profiles.length ? profiles[0].min_workers ?? 0 : 0,
        collaborators: [],
      };

  const errors = {};
  const fieldError = (name) => h("p.field-error", { id: `${name}-error`, role: "alert" });
  const errorNodes = {};
  for (const f of ["display_name", "slug", "products", "assets", "tools", "profile", "workers", "collaborators", "form"]) errorNodes[f] = fieldError(f);

  function show(all) {
    for (const [f, node] of Object.entries(errorNodes)) {
      node.textContent = all[f] || "";
      const input = document.querySelector(`[data-field="${f}"]`);
      if (input) input.toggleAttribute("aria-invalid", Boolean(all[f]));
    }
    Object.keys(errors).forEach((k) => delete errors[k]);
    Object.assign(errors, all);
  }

  function validate() {
    const found = checkSpec(spec, { profiles, owned, limit, creating });
    show(found);
    return found;
  }

  // name and slug
  const slugInput = h("input", { id: "slug", "data-field": "slug", value: spec.slug || "", placeholder: "auto", "aria-describedby": "slug-help slug-error", maxlength: 30 });
  let slugTouched = false;
  slugInput.addEventListener("input", () => { slugTouched = true; spec.slug = slugInput.value; validate(); });
  const nameInput = h("input", { id: "display_name", "data-field": "display_name", value: spec.display_name, required: true, maxlength: 100, "aria-describedby": "display_name-error" });
  nameInput.addEventListener("input", () => {
    spec.display_name = nameInput.value;
    if (creating && !slugTouched) {
      spec.slug = slugify(nameInput.value);
      slugInput.value = spec.slug;
    }
    validate();
  });

  // data picker: products with their assets, each with my subscription state
  const dataPicker = h("div.picker", { "data-field": "products", role: "group", "aria-labelledby": "data-label" },
    catalog.map((product) => {
      const sub = subscriptionOf(product);
      const pBox = h("input", { type: "checkbox", id: `product-${product.id}`, checked: spec.products.includes(product.id),
        onchange: (e) => {
          spec.products = e.target.checked ? [...spec.products, product.id] : spec.products.filter((x) => x !== product.id);
          validate();
        } });
      return h("fieldset.product", { dataset: { product: product.name } },
        h("legend", {}, pBox, h("label", { for: `product-${product.id}` }, product.display_name || product.name),
          " ", badge(`sub-${sub}`, SUBSCRIPTION_TEXT[sub] || sub)),
        product.description ? h("p.small.muted", {}, product.description) : null,
        h("ul.assets", {}, (product.assets || []).map((asset) => {
          const asub = subscriptionOf(asset, product);
          const aBox = h("input", { type: "checkbox", id: `asset-${asset.id}`, checked: spec.assets.includes(asset.id),
            onchange: (e) => {
              spec.assets = e.target.checked ? [...spec.assets, asset.id] : spec.assets.filter((x) => x !== asset.id);
              validate();
            } });
          return h("li", {}, aBox, h("label", { for: `asset-${asset.id}` }, asset.name),
            h("span.small.muted", {}, ` ${asset.kind || ""}`), " ", badge(`sub-${asub}`, subscriptionText(asub, product)));
        })));
    }));

  // tools
  const toolsBox = h("div.checks", { "data-field": "tools", role: "group", "aria-labelledby": "tools-label" },
    config.tools.map((t) => h("label.check", {},
      h("input", { type: "checkbox", value: t, checked: spec.tools.includes(t), onchange: (e) => {
        spec.tools = e.target.checked ? [...spec.tools, t] : spec.tools.filter((x) => x !== t);
        validate();
      } }), TOOL_NAMES[t] || t)));

  // profile and workers
  const workersHelp = h("span.small.muted", { id: "workers-help" });
  const workersInput = h("input", { id: "workers", "data-field": "workers", type: "number", step: 1, value: spec.workers, "aria-describedby": "workers-help workers-error" });
  const setRange = () => {
    const p = profiles.find((x) => x.name === spec.profile);
    if (p) {
      workersInput.min = p.min_workers ?? 0;
      workersInput.max = p.max_workers ?? 0;
      workersHelp.textContent = `${p.min_workers ?? 0}–${p.max_workers ?? 0} for this profile`;
    }
  };
  workersInput.addEventListener("input", () => { spec.workers = Number(workersInput.value); validate(); });
  const profileSelect = h("select", { id: "profile", "data-field": "profile", onchange: (e) => { spec.profile = e.target.value; setRange(); validate(); } },
    profiles.map((p) => h("option", { value: p.name, selected: p.name === spec.profile },
      p.display_name || `${p.name}${p.cpu_limit ? ` · ${p.cpu_limit} CPU` : ""}${p.mem_limit ? ` · ${p.mem_limit}` : ""}`)));
  setRange();

  // collaborators
  const collabList = h("ul.people", { id: "spec-collaborators" });
  const renderCollabs = () => collabList.replaceChildren(...spec.collaborators.map((c, i) =>
    h("li", { dataset: { user: c.user } }, h("span.person", {}, c.user),
      h("select", { "aria-label": `Role of ${c.user}`, onchange: (e) => { c.role = e.target.value; } },
        ROLES.filter((r) => r !== "owner").map((r) => h("option", { value: r, selected: r === c.role }, r))),
      h("button.link", { type: "button", "aria-label": `Remove ${c.user}`, onclick: () => { spec.collaborators.splice(i, 1); renderCollabs(); } }, "Remove"))));
  renderCollabs();
  const [personInput, personOptions] = userPicker("add-person");
  const personRole = h("select", { "aria-label": "Role of the new collaborator" }, ROLES.filter((r) => r !== "owner").map((r) => h("option", { value: r }, r)));
  const addPerson = () => {
    const user = personInput.value.trim();
    if (!user) return;
    if (user === config.user || spec.collaborators.some((c) => c.user === user)) {
      errorNodes.collaborators.textContent = `${user} is already in the space.`;
      return;
    }
    spec.collaborators.push({ user, role: personRole.value });
    personInput.value = "";
    errorNodes.collaborators.textContent = "";
    renderCollabs();
  };
  personInput.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); addPerson(); } });

  const atLimit = creating && owned >= limit;
  const submit = h("button.primary", { type: "submit", id: "save", disabled: atLimit }, creating ? "Create space" : "Save changes");

  const form = h("form.panel.spec-form", { id: "spec-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const found = validate();
    if (Object.keys(found).length) {
      const first = document.querySelector("[aria-invalid]");
      if (first) first.focus();
      return;
    }
    submit.disabled = true;
    const body = {
      display_name: spec.display_name.trim(),
      products: spec.products,
      assets: spec.assets,
      tools: spec.tools,
      profile: spec.profile,
      workers: spec.workers,
    };
    if (creating && spec.slug) body.slug = spec.slug;
    try {
      const saved = creating ? await api("spaces", "POST", body) : await api(`spaces/${id}`, "PATCH", body);
      // people are invited one by one: the service checks each against visibility
      const refused = [];
      for (const c of creating ? spec.collaborators : []) {
        try {
          await api(`spaces/${saved.id}/collaborators`, "POST", c);
        } catch (err) {
          refused.push(`${c.user}: ${(err.fields && err.fields.user) || err.message}`);
        }
      }
      if (refused.length) flash(`Created “${saved.display_name}”, but not everyone could be invited. ${refused.join(" ")}`, "error");
      else flash(creating ? `Created “${saved.display_name}”.` : `Saved “${saved.display_name || spec.display_name}”.`);
      window.location.hash = `#/spaces/${saved.id || id}`;
    } catch (err) {
      submit.disabled = false;
      const fields = Object.assign({}, err.fields || {});
      // fields the form shows under another name
      for (const [k, v] of Object.entries(fields)) {
        const base = k.split(/[.[]/)[0];
        if (!(base in errorNodes)) { fields.form = (fields.form ? fields.form + " " : "") + v; }
        else if (base !== k) fields[base] = v;
      }
      const keys = Object.keys(fields);
      if (keys.length === 1 && keys[0] !== "form") fields[keys[0]] = err.message; // the full explanation, at its field
      else if (!fields.form) fields.form = err.message;
      show(fields);
      const first = document.querySelector("[aria-invalid]");
      if (first) first.focus();
    }
  } },
    h("div.field", {},
      h("label", { for: "display_name" }, "Name"), nameInput, errorNodes.display_name),
    creating ? h("div.field", {},
      h("label", { for: "slug" }, "Short name"), slugInput,
      h("span.small.muted", { id: "slug-help" }, "Used in URLs; cannot change later."), errorNodes.slug) : null,
    h("div.field", {},
      h("span.label", { id: "data-label" }, "Data products and assets"),
      h("p.small.muted", {}, "Everyone working in the space needs a subscription to each one; a spaces-only subscription makes the session a Sandbox."),
      dataPicker, errorNodes.products, errorNodes.assets),
    h("div.field", {}, h("span.label", { id: "tools-label" }, "Tools"), toolsBox, errorNodes.tools),
    h("div.field.row", {},
      h("div", {}, h("label", { for: "profile" }, "Machine profile"), profileSelect, errorNodes.profile),
      h("div", {}, h("label", { for: "workers" }, "Workers"), workersInput, workersHelp, errorNodes.workers)),
    creating ? h("div.field", {},
      h("label", { for: "add-person" }, "Collaborators"),
      collabList,
      h("div.inline", {}, personInput, personOptions, personRole, h("button", { type: "button", onclick: addPerson }, "Add")),
      errorNodes.collaborators) : null,
    errorNodes.form,
    h("div.actions", {}, h("a.button", { href: creating ? "#/" : `#/spaces/${id}` }, "Cancel"), submit));

  mount("view",
    h("p.crumbs", {}, h("a", { href: "#/" }, "My spaces"), " / ", creating ? "New space" : space.display_name),
    h("div.page-head", {}, h("h1", {}, creating ? "New space" : `Edit “${space.display_name}”`),
      creating ? h("div.limit", { id: "limit-note", class: atLimit ? "limit-full" : "" },
        atLimit ? `You own ${owned} of ${limit} spaces: this would be one too many. Delete a space first.`
          : `This will be space ${owned + 1} of the ${limit} you may own.`) : null),
    form);
  if (atLimit) show({ display_name: `You own ${owned} of ${limit} spaces: delete one before creating another.` });
}

// --------------------------------------------------------------------------
// catalog

async function catalogView() {
  const catalog = await loadCatalog();
  document.title = "Catalog · Spaces";
  const row = (entry, kind, product) => {
    const sub = subscriptionOf(entry, product);
    const canRequest = ["none", "expired", "revoked"].includes(sub);
    return h("tr", { dataset: { kind, name: entry.name } },
      h("td", {}, kind === "asset" ? h("span.indent", {}, "↳ ") : null, h(kind === "product" ? "strong" : "span", {}, entry.display_name || entry.name)),
      h("td", {}, kind === "product" ? "product" : entry.kind || "asset", entry.derived ? " (derived)" : ""),
      h("td", {}, kind === "product" ? entry.org || entry.owner_org || "" : product.display_name || product.name),
      h("td", {}, badge(`sub-${sub}`, subscriptionText(sub, product)),
        entry.subscription && entry.subscription.expires_at ? h("span.small.muted", {}, ` until ${new Date(entry.subscription.expires_at).toLocaleDateString()}`) : null),
      h("td", {}, canRequest
        ? h("button.small", { onclick: (e) => requestSubscription({ kind, id: entry.id, name: entry.name }, e.currentTarget) }, "Request")
        : null,
        entry.derived ? h("a.small", { href: `${config.api}assets/${entry.id}/lineage.svg`, target: "_blank" }, " lineage") : null));
  };
  mount("view",
    h("div.page-head", {}, h("div", {}, h("h1", {}, "Catalog"),
      h("p.muted", {}, "Data products and their assets, with your subscription to each. Request what you need; an admin grants it."))),
    h("section.panel.table-wrap", {},
      h("table.table", {},
        h("thead", {}, h("tr", {}, ["Name", "Kind", "Owner / product", "Your subscription", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, catalog.flatMap((p) => [row(p, "product"), ...(p.assets || []).map((a) => row(a, "asset", p))])))));
}

// --------------------------------------------------------------------------
// audit log (admins)

async function auditView() {
  document.title = "Audit log · Spaces";
  if (!config.admin) {
    mount("view", h("section.panel", {}, h("h1", {}, "Audit log"), h("p", {}, "Only spaces admins can read the audit log.")));
    return;
  }
  const actor = h("input", { type: "search", id: "audit-actor", placeholder: "Who (exact name)", "aria-label": "Filter by user" });
  const action = h("select", { id: "audit-action", "aria-label": "Filter by action" },
    [["", "All actions"], ["space.", "Spaces"], ["collaborator.", "Collaborators"], ["subscription.", "Subscriptions"], ["asset.", "Assets"]]
      .map(([v, t]) => h("option", { value: v }, t)));
  const outcome = h("select", { id: "audit-outcome", "aria-label": "Filter by outcome" },
    [["", "Any outcome"], ["ok", "Allowed"], ["refused", "Refused"]].map(([v, t]) => h("option", { value: v }, t)));
  const body = h("tbody", {});
  const more = h("button", { id: "audit-more" }, "Older events");
  let offset = 0;
  const load = async (reset) => {
    if (reset) { offset = 0; body.replaceChildren(); }
    const args = new URLSearchParams({ limit: "100", offset: String(offset) });
    if (actor.value.trim()) args.set("actor", actor.value.trim());
    if (action.value) args.set("action", action.value);
    if (outcome.value) args.set("outcome", outcome.value);
    const page = await api(`audit?${args}`);
    const events = page.items || page;
    offset += events.length;
    more.hidden = !page.next;
    if (reset && !events.length) body.append(h("tr", {}, h("td", { colspan: 6 }, "No events match.")));
    body.append(...events.map((e) => h("tr", { class: e.outcome === "refused" ? "refused" : "" },
      h("td", { title: e.at }, ago(e.at)),
      h("td", {}, e.actor),
      h("td", {}, h("code", {}, e.action)),
      h("td", {}, `${e.target_type || ""} ${e.target_id ?? ""}`),
      h("td", {}, e.outcome ? badge(e.outcome === "refused" ? "failed" : "active", e.outcome) : ""),
      h("td.small", {}, Object.entries(e.detail || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("; ")))));
  };
  let timer = 0;
  const reload = () => { window.clearTimeout(timer); timer = window.setTimeout(() => load(true).catch((err) => flash(err.message, "error")), 250); };
  actor.addEventListener("input", reload);
  action.addEventListener("change", reload);
  outcome.addEventListener("change", reload);
  more.addEventListener("click", () => load(false));
  mount("view",
    h("div.page-head", {}, h("div", {}, h("h1", {}, "Audit log"), h("p.muted", {}, "Every governance decision and change, newest first.")),
      h("div.head-actions", {}, actor, action, outcome)),
    h("section.panel.table-wrap", {},
      h("table.table", {}, h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Target", "Outcome", "Details"].map((t) => h("th", { scope: "col" }, t)))), body),
      more));
  await load(true);
}

route();
