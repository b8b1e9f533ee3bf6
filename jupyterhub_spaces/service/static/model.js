// How the app reads the API's objects: one place that knows field names, so views
// stay simple and a renamed field is fixed once.

export const TOOL_NAMES = {
  jupyterlab: "JupyterLab",
  rstudio: "RStudio",
  superset: "Superset",
  sqllab: "SQL Lab",
};

export const ROLES = ["owner", "viewer", "editor", "publisher"];

export const ROLE_HELP = {
  owner: "manages the space and its collaborators",
  editor: "changes the spec and invites people",
  viewer: "works in the space, cannot change it",
  publisher: "may publish derived assets",
};

/** The session state of a space for me: active, starting, suspended, failed, stopping or idle. */
export function stateOf(space) {
  const state = (space.status && space.status.state) || space.state || "";
  if (!state || state === "inactive") return "idle";
  return state === "stopped" ? "suspended" : state;
}

/** My access mode: workbench, sandbox, locked or not_member. */
export function modeOf(space) {
  return (space.access && space.access.mode) || space.mode || "unknown";
}

/** The failure reason of the last activation, if it failed. */
export function failureOf(space) {
  return (space.status && space.status.reason) || space.reason || "";
}

export function names(list) {
  return (list || []).map((x) => (typeof x === "object" ? x.name || x.display_name || String(x.id) : String(x)));
}

export function ids(list) {
  return (list || []).map((x) => (typeof x === "object" ? x.id : x));
}

export function collaboratorsOf(space) {
  return (space.collaborators || []).map((c) =>
    typeof c === "string" ? { user: c, role: "viewer" } : { user: c.user || c.name, role: c.role, access: c.access }
  );
}

/** The URL of my running session of a space (JupyterLab), if any. */
export function sessionUrl(space, hubPrefix, user) {
  const url = (space.status && space.status.url) || space.url;
  if (url) return url;
  const base = hubPrefix.replace(/hub\/$/, "");
  return `${base}user/${encodeURIComponent(user)}/${encodeURIComponent(space.server)}/lab`;
}

/** What the button that opens an active session says: a Sandbox opens its desktop. */
export function openLabel(mode) {
  return mode === "sandbox" ? "Open desktop" : "Open JupyterLab";
}

/** Missing subscriptions of a locked access decision, each {kind, id, name, reason, message}. */
export function missingOf(access) {
  return ((access && access.missing) || []).map((m) => {
    const t = m.target || m;
    return {
      kind: t.kind,
      id: t.id,
      name: t.name,
      reason: m.reason,
      message: m.message || `${m.reason}: ${t.kind} ${t.name}`,
      via: m.via,
    };
  });
}

/**
 * My subscription state for a catalog entry: full, spaces, requested, expired,
 * revoked, none; an asset without its own subscription is "covered" when its
 * product's subscription is active (the product's covers its assets).
 */
export function subscriptionOf(entry, product) {
  const s = entry.subscription || null;
  if (!s) {
    if (product && ["full", "spaces"].includes(subscriptionOf(product))) return "covered";
    return "none";
  }
  if (typeof s === "string") return s;
  if (s.status && s.status !== "active") return s.status;
  if (s.expired || (s.expires_at && new Date(s.expires_at) < new Date())) return "expired";
  return s.level || "full";
}

export const SUBSCRIPTION_TEXT = {
  full: "subscribed (full)",
  spaces: "subscribed (spaces only)",
  requested: "requested",
  expired: "expired",
  revoked: "revoked",
  none: "not subscribed",
  covered: "via its product",
};

/** The label of a subscription state; a covered asset says how far its product's goes. */
export function subscriptionText(state, product) {
  if (state === "covered" && product) {
    return subscriptionOf(product) === "spaces" ? "via its product (spaces only)" : "via its product";
  }
  return SUBSCRIPTION_TEXT[state] || state;
}

/** Client-side checks of a spec, mirroring the service's rules; {field: message}. */
export function checkSpec(spec, { profiles, owned, limit, creating }) {
  const errors = {};
  const name = (spec.display_name || "").trim();
  if (!name) errors.display_name = "Give the space a name.";
  else if (name.length > 100) errors.display_name = "At most 100 characters.";
  if (spec.slug !== undefined && spec.slug !== "" && !/^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,29}$/.test(spec.slug)) {
    errors.slug = "1-30 lowercase letters, digits and single hyphens, starting with a letter.";
  }
  if (!spec.tools || !spec.tools.length) errors.tools = "Pick at least one tool.";
  const profile = (profiles || []).find((p) => p.name === spec.profile);
  if (profiles && profiles.length && !profile) errors.profile = "Pick a machine profile.";
  if (profile) {
    const lo = profile.min_workers ?? 0;
    const hi = profile.max_workers ?? 0;
    if (!Number.isInteger(spec.workers) || spec.workers < lo || spec.workers > hi) {
      errors.workers = `${profile.display_name || profile.name} allows ${lo} to ${hi} workers.`;
    }
  }
  if (creating && owned >= limit) {
    errors.display_name = `You own ${owned} of ${limit} spaces: delete one before creating another.`;
  }
  return errors;
}

/** A slug suggestion from a display name. */
export function slugify(name) {
  // as the service does: decompose, drop what is not ASCII, then hyphenate
  let s = (name || "").normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase();
  s = s.replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  s = s.replace(/^[^a-z]+/, "");
  return s.slice(0, 30).replace(/-+$/, "");
}
