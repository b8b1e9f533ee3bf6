// Small DOM helpers. Text always goes in with textContent: names and messages come
// from users and must never be parsed as HTML.

/** h("button.primary", {onclick, disabled}, "Save") */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const node = document.createElement(name || "div");
  if (classes.length) node.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.className += (node.className ? " " : "") + value;
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key in node && typeof value !== "string") {
      node[key] = value;
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

/** A coloured state pill. */
export function badge(kind, text, title) {
  return h("span.badge", { class: `badge-${kind}`, title: title || undefined }, text || kind);
}

/** Replace the content of `target` (an element or id). */
export function mount(target, ...children) {
  const node = typeof target === "string" ? document.getElementById(target) : target;
  node.replaceChildren();
  append(node, children);
  return node;
}

let flashTimer = 0;

/** A short message at the top of the page, announced to screen readers. */
export function flash(text, kind = "ok") {
  const box = document.getElementById("flash");
  box.className = `flash flash-${kind}`;
  box.textContent = text;
  window.clearTimeout(flashTimer);
  if (kind === "ok") flashTimer = window.setTimeout(() => { box.textContent = ""; box.className = ""; }, 6000);
}

/**
 * A modal confirmation dialog (native <dialog>: focus is trapped and Escape closes).
 * Resolves true when the user confirms.
 */
export function confirmDialog({ title, body, confirm = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const dialog = h("dialog.dialog", { "aria-labelledby": "dialog-title" },
      h("h2", { id: "dialog-title" }, title),
      ...(Array.isArray(body) ? body : [body]),
      h("div.actions",
        {},
        h("button", { type: "button", value: "cancel", onclick: () => dialog.close("cancel") }, "Cancel"),
        h(danger ? "button.danger" : "button.primary", { type: "button", onclick: () => dialog.close("ok") }, confirm)
      )
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** "3 minutes ago" for an ISO date. */
export function ago(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (Number.isNaN(seconds)) return iso;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
