// The Tasks and Code Assets views of a space: the panels on the space's page, one
// task's page (its runs and their logs, followed while a run runs) and one Code
// Asset's page (its versions, a diff between two, restore). Everything comes from the
// API (docs/tasks.md); bad input is shown with the API's own message at its field.

import { api } from "./api.js";
import { ago, badge, confirmDialog, flash, h, mount } from "./dom.js";

/** how often a page looks again while something runs (the engine sends output every 2 s) */
const FOLLOW_MS = 2000;

const RUN_BADGE = { success: "active", running: "starting", failed: "failed", refused: "locked", cancelled: "suspended" };

export function runBadge(run) {
  return badge(RUN_BADGE[run.state] || "waiting", run.state, run.reason || undefined);
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function scheduleText(task) {
  return task.schedule ? `${task.schedule} (${task.timezone})` : "on demand only";
}

/** Ask again every `ms` while `more()` says so; stops when the page is left. */
function follow(onLeave, ms, job) {
  let stopped = false;
  let timer = 0;
  const tick = async () => {
    if (stopped) return;
    let again = false;
    try {
      again = await job();
    } catch (e) {
      again = true; // a blip: look again
    }
    if (again && !stopped) timer = window.setTimeout(tick, ms);
  };
  onLeave(() => { stopped = true; window.clearTimeout(timer); });
  timer = window.setTimeout(tick, ms);
}

/** Show the API's error: each field's message at its field, the whole message above. */
function showErrors(form, box, err) {
  for (const node of form.querySelectorAll(".field-error[data-for]")) node.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  box.textContent = err ? err.message : "";
  for (const [field, text] of Object.entries((err && err.fields) || {})) {
    const node = form.querySelector(`.field-error[data-for="${field}"]`);
    if (node) node.textContent = text;
    const input = form.querySelector(`[name="${field}"]`);
    if (input) input.setAttribute("aria-invalid", "true");
  }
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
}

function field(label, name, input, help) {
  input.name = name;
  input.id = `f-${name}`;
  return h("div.field", {},
    h("label", { for: input.id }, label), input,
    help ? h("span.small.muted", {}, help) : null,
    h("span.field-error", { "data-for": name, role: "alert" }));
}

// --------------------------------------------------------------------------
// the panels on the space's page

/** The space's tasks: schedule, next run, last runs; run now, pause/resume; a form to create one. */
export function tasksPanel(space, canEdit, onLeave) {
  const body = h("div", {}, h("p.muted", {}, "Loading tasks…"));
  const panel = h("section.panel", { id: "tasks" },
    h("div.panel-head", {}, h("h2", {}, "Tasks"),
      canEdit ? h("button", { id: "new-task", onclick: () => openForm() }, "New task") : null),
    h("p.small.muted", {}, "Code of this space run on a schedule or on demand, as the member who set it up."),
    body);
  const formSlot = h("div", {});
  panel.append(formSlot);
  let assets = [];

  async function load() {
    const [tasks, codeAssets] = await Promise.all([api(`spaces/${space.id}/tasks`), api(`spaces/${space.id}/code-assets`)]);
    assets = codeAssets.items || [];
    const items = tasks.items || [];
    if (!items.length) {
      body.replaceChildren(h("p", { id: "no-tasks" }, assets.length
        ? "No tasks yet. Create one from a Code Asset of the space."
        : "No tasks yet. Save a notebook or script as a Code Asset first, then create a task from it."));
      return false;
    }
    body.replaceChildren(h("div.table-wrap", {}, h("table.table", { id: "task-list" },
      h("thead", {}, h("tr", {}, ["Task", "Schedule", "Next run", "Last runs", "Owner", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((t) => taskRow(space, t, canEdit, load))))));
    return items.some((t) => (t.last_runs || []).some((r) => r.state === "running"));
  }

  async function openForm() {
    await first.catch(() => null); // the form offers the space's Code Assets: wait for them
    formSlot.replaceChildren(taskForm(space, assets, () => { formSlot.replaceChildren(); }, load));
    formSlot.querySelector("input").focus();
  }

  const first = load();
  first.then((running) => {
    if (running) follow(onLeave, FOLLOW_MS * 2, load);
  }).catch((e) => body.replaceChildren(h("p.error-text", {}, e.message)));
  return panel;
}

function taskRow(space, t, canEdit, reload) {
  const link = `#/spaces/${space.id}/tasks/${t.id}`;
  return h("tr", { dataset: { task: t.name } },
    h("td", {}, h("a", { href: link }, t.name), " ",
      t.paused ? badge("suspended", "paused", t.paused_reason || "paused") : null,
      h("div.small.muted", {}, `${t.entry} · v${t.version}`)),
    h("td.schedule", {}, scheduleText(t)),
    h("td.next-run", { title: t.next_run_at || "" }, t.next_run_at ? when(t.next_run_at) : t.paused && t.schedule ? "paused" : "—"),
    h("td.last-runs", {}, (t.last_runs || []).length
      ? (t.last_runs || []).map((r) => h("a.run-pill", { href: `${link}?run=${r.id}`, title: `${r.state} · ${when(r.started_at)}` }, runBadge(r)))
      : h("span.muted.small", {}, "never ran")),
    h("td", {}, t.owner),
    h("td.row-actions", {}, canEdit ? taskActions(t, reload) : null));
}

/** Run now and pause/resume buttons; `after` reloads what shows the task. */
function taskActions(t, after) {
  const act = async (button, path, done) => {
    button.disabled = true;
    try {
      const answer = await api(`tasks/${t.id}/${path}`, "POST");
      flash(done(answer));
      await after();
    } catch (e) {
      flash(e.message, "error");
    }
    button.disabled = false;
  };
  const run = h("button.small", { "data-action": "run", onclick: (e) => act(e.currentTarget, "run",
    () => `“${t.name}” was handed to Airflow: its run shows here within seconds.`) }, "Run now");
  run.disabled = t.paused;
  run.title = t.paused ? "Resume the task to run it" : "Start a run now";
  const toggle = t.paused
    ? h("button.small", { "data-action": "resume", onclick: (e) => act(e.currentTarget, "resume", () => `Resumed “${t.name}”.`) }, "Resume")
    : h("button.small", { "data-action": "pause", onclick: (e) => act(e.currentTarget, "pause", () => `Paused “${t.name}”: it will not run until resumed.`) }, "Pause");
  return h("span.inline-actions", {}, run, toggle);
}

/** The form creating a task from a Code Asset version; errors come from the API. */
function taskForm(space, assets, close, reload) {
  const error = h("p.field-error.form-error", { id: "task-form-error", role: "alert" });
  const name = h("input", { required: true, maxlength: 200 });
  const asset = h("select", {}, assets.map((a) => h("option", { value: a.id }, `${a.name} (${a.kind})`)));
  const version = h("select", {});
  const fillVersions = () => {
    const a = assets.find((x) => String(x.id) === asset.value);
    const n = a ? a.latest_version || 0 : 0;
    version.replaceChildren(h("option", { value: "" }, "latest"),
      ...Array.from({ length: n }, (_, i) => n - i).map((v) => h("option", { value: v }, `version ${v}`)));
  };
  asset.addEventListener("change", fillVersions);
  fillVersions();
  const schedule = h("input", { placeholder: "30 2 * * *  (empty: on demand only)" });
  const tz = h("input", { value: Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC" });
  const retries = h("input", { type: "number", min: 0, max: 10, step: 1, value: 0 });
  const timeout = h("input", { type: "number", min: 10, step: 1, value: 3600 });
  const parameters = h("textarea", { rows: 2, placeholder: '{"region": "north"}' });
  const submit = h("button.primary", { type: "submit", id: "create-task" }, "Create task");
  const form = h("form.panel.task-form", { id: "task-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const body = {
      name: name.value,
      code_asset_id: Number(asset.value),
      schedule: schedule.value.trim() || null,
      timezone: tz.value.trim(),
      retries: Number(retries.value),
      timeout_seconds: Number(timeout.value),
    };
    if (version.value) body.version = Number(version.value);
    if (parameters.value.trim()) {
      try {
        body.parameters = JSON.parse(parameters.value);
      } catch (err) {
        showErrors(form, error, { message: "Parameters must be a JSON object, e.g. {\"region\": \"north\"}.", fields: { parameters: "not JSON" } });
        return;
      }
    }
    submit.disabled = true;
    try {
      const task = await api(`spaces/${space.id}/tasks`, "POST", body);
      flash(`Created task “${task.name}”${task.next_run_at ? `: next run ${when(task.next_run_at)}` : ""}.`);
      close();
      await reload();
    } catch (err) {
      submit.disabled = false;
      showErrors(form, error, err);
    }
  } },
    h("h3", {}, "New task"),
    assets.length ? null : h("p.error-text", {}, "This space has no Code Asset yet: save one below first."),
    field("Name", "name", name),
    h("div.field.row", {},
      field("Code Asset", "code_asset_id", asset),
      field("Version", "version", version)),
    h("div.field.row", {},
      field("Schedule (cron)", "schedule", schedule, "minute hour day month weekday, or @daily; empty runs on demand only"),
      field("Time zone", "timezone", tz)),
    h("div.field.row", {},
      field("Retries", "retries", retries),
      field("Timeout (seconds)", "timeout_seconds", timeout)),
    field("Parameters (JSON)", "parameters", parameters),
    error,
    h("div.actions", {}, h("button", { type: "button", onclick: close }, "Cancel"), submit));
  return form;
}

/** The space's Code Assets, and "Save as code asset" from a path of the member's space home. */
export function codeAssetsPanel(space, canEdit) {
  const list = h("ul.code-assets", { id: "code-assets" }, h("li.muted", {}, "Loading…"));
  const load = async () => {
    const answer = await api(`spaces/${space.id}/code-assets`);
    const items = answer.items || [];
    list.replaceChildren(...(items.length ? items.map((a) => h("li", { dataset: { asset: a.name } },
      h("a", { href: `#/spaces/${space.id}/code-assets/${a.id}` }, a.name),
      h("span.small.muted", {}, ` ${a.kind} · version ${a.latest_version ?? "–"} · by ${a.created_by}`)))
      : [h("li.muted", {}, "No Code Assets yet.")]));
  };
  load().catch((e) => list.replaceChildren(h("li.error-text", {}, e.message)));
  return h("section.panel", { id: "code-assets-panel" },
    h("h2", {}, "Code Assets"),
    h("p.small.muted", {}, "Notebooks, scripts and folders saved from the space as versions a task can run."),
    list,
    canEdit ? saveForm(space, load) : null);
}

function saveForm(space, reload) {
  const error = h("p.field-error.form-error", { id: "save-asset-error", role: "alert" });
  const name = h("input", { maxlength: 200, placeholder: "e.g. forecast" });
  const path = h("input", { maxlength: 500, placeholder: "e.g. forecast.ipynb or jobs/forecast" });
  const message = h("input", { maxlength: 2000, placeholder: "what changed" });
  path.addEventListener("input", () => {
    if (!name.dataset.touched) name.value = (path.value.split("/").filter(Boolean).pop() || "").replace(/\.(ipynb|py)$/, "");
  });
  name.addEventListener("input", () => { name.dataset.touched = "1"; });
  const form = h("form.save-asset", { id: "save-asset", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    try {
      const saved = await api(`spaces/${space.id}/code-assets`, "POST",
        { name: name.value, path: path.value, message: message.value });
      flash(saved.new_version ? `Saved “${saved.name}” as version ${saved.version.number}.`
        : `“${saved.name}” is unchanged since version ${saved.version.number}: no new version.`);
      showErrors(form, error, null);
      await reload();
    } catch (err) {
      showErrors(form, error, err);
    }
  } },
    h("h3", {}, "Save as code asset"),
    h("p.small.muted", {}, "A notebook, script or folder of your home in this space (the files JupyterLab shows)."),
    h("div.field.row", {}, field("File or folder", "path", path), field("Name", "name", name)),
    field("Message", "message", message),
    error,
    h("div.actions", {}, h("button.primary", { type: "submit" }, "Save version")));
  return form;
}

// --------------------------------------------------------------------------
// one task

export async function taskView(spaceId, taskId, onLeave, selectedRun) {
  const [space, task] = await Promise.all([api(`spaces/${spaceId}`), api(`tasks/${taskId}`)]);
  if (task.space_id !== space.id) throw new Error(`Task ${taskId} is not a task of this space.`);
  document.title = `${task.name} · ${space.display_name} · Spaces`;
  const canEdit = ["owner", "editor"].includes(space.role);
  const runsBody = h("tbody", {});
  const logTitle = h("h2", { id: "log-title" }, "Log");
  const logBox = h("pre.run-log", { id: "run-log", tabindex: 0, "aria-live": "off" }, "Pick a run to see its log.");
  const logActions = h("div.head-actions", {});
  let shown = selectedRun ? Number(selectedRun) : null;
  let known = -1;
  let followingLog = false;

  async function showRun(runId) {
    shown = runId;
    const run = await api(`tasks/${taskId}/runs/${runId}`);
    logTitle.textContent = `Log of run ${run.id} (try ${run.try_number})`;
    logTitle.replaceChildren(`Log of run ${run.id} (try ${run.try_number}) `, runBadge(run));
    const atEnd = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 4;
    logBox.textContent = run.log || (run.state === "running" ? "Waiting for output…" : run.reason || "No output.");
    if (atEnd) logBox.scrollTop = logBox.scrollHeight;
    logBox.dataset.state = run.state;
    logActions.replaceChildren(...(run.state === "running" && canEdit
      ? [h("button.danger-outline.small", { id: "cancel-run", onclick: (e) => cancel(run, e.currentTarget) }, "Cancel run")] : []));
    for (const row of runsBody.querySelectorAll("tr")) row.toggleAttribute("aria-selected", row.dataset.run === String(runId));
    if (run.state === "running" && !followingLog) {
      // the output so far, as the engine sends it, until the run ends
      followingLog = true;
      follow(onLeave, FOLLOW_MS, async () => {
        if (shown !== run.id) { followingLog = false; return false; }
        const now = await api(`tasks/${taskId}/runs/${run.id}`);
        if (now.state !== "running") { followingLog = false; await loadRuns(); return false; }
        logBox.textContent = now.log || "Waiting for output…";
        logBox.scrollTop = logBox.scrollHeight;
        return true;
      });
    }
  }

  async function cancel(run, button) {
    const ok = await confirmDialog({ title: `Cancel run ${run.id}?`, body: h("p", {}, "Its process is stopped; what it wrote so far stays."), confirm: "Cancel the run", danger: true });
    if (!ok) return;
    button.disabled = true;
    try {
      await api(`tasks/${taskId}/runs/${run.id}/cancel`, "POST");
      flash(`Cancelling run ${run.id}…`);
    } catch (e) {
      flash(e.message, "error");
      button.disabled = false;
    }
  }

  async function loadRuns() {
    const page = await api(`tasks/${taskId}/runs?limit=50`);
    const runs = page.items || [];
    runsBody.replaceChildren(...(runs.length ? runs.map((r) => h("tr", { dataset: { run: r.id, state: r.state }, class: "clickable", onclick: () => showRun(r.id) },
      h("td", {}, h("button.link", { "aria-label": `Show the log of run ${r.id}` }, `#${r.id}`)),
      h("td", {}, runBadge(r)),
      h("td", { title: r.started_at }, when(r.started_at)),
      h("td", {}, r.state === "running" ? "running…" : duration(r.duration_seconds)),
      h("td", {}, String(r.try_number)),
      h("td.small", {}, r.reason || ""))) : [h("tr", {}, h("td", { colspan: 6 }, "No runs yet."))]));
    const newest = runs[0];
    if (newest && (shown === null || (known >= 0 && runs.length > known))) await showRun(newest.id);
    else if (shown !== null && !runsBody.querySelector("[aria-selected]")) await showRun(shown);
    known = runs.length;
    return runs.some((r) => r.state === "running");
  }

  const head = h("div.page-head", {},
    h("div", {},
      h("h1", {}, task.name, " ", task.paused ? badge("suspended", "paused", task.paused_reason) : badge("active", "scheduled")),
      h("p.muted", {}, `Task of ${space.display_name} · runs as ${task.owner}`)),
    h("div.head-actions", {}, canEdit ? taskActions(task, async () => {
      // run now: the run shows once Airflow starts it; pause/resume: the page changes
      const fresh = await api(`tasks/${taskId}`);
      if (fresh.paused !== task.paused) { window.dispatchEvent(new HashChangeEvent("hashchange")); return; }
      let tries = 0;
      follow(onLeave, FOLLOW_MS, async () => {
        const before = known;
        await loadRuns();
        tries += 1;
        return known === before && tries < 60;
      });
    }) : null));
  mount("view",
    h("p.crumbs", {}, h("a", { href: "#/" }, "My spaces"), " / ", h("a", { href: `#/spaces/${space.id}` }, space.display_name), " / ", task.name),
    head,
    task.paused && task.paused_reason ? h("p.banner", {}, `Paused: ${task.paused_reason}`) : null,
    h("section.panel", { id: "task-facts" },
      h("dl.facts", {},
        h("dt", {}, "Schedule"), h("dd", { id: "task-schedule" }, scheduleText(task)),
        h("dt", {}, "Next run"), h("dd", { id: "task-next-run" }, task.next_run_at ? when(task.next_run_at) : task.paused ? "paused" : "—"),
        h("dt", {}, "Runs"), h("dd", {}, h("a", { href: `#/spaces/${space.id}/code-assets/${task.code_asset_id}` }, task.entry), ` version ${task.version}`),
        h("dt", {}, "Parameters"), h("dd", {}, h("code", {}, JSON.stringify(task.parameters || {}))),
        h("dt", {}, "Retries"), h("dd", {}, String(task.retries)),
        h("dt", {}, "Timeout"), h("dd", {}, duration(task.timeout_seconds)),
        h("dt", {}, "Machine"), h("dd", {}, task.profile))),
    h("section.panel.table-wrap", { id: "runs" },
      h("h2", {}, "Runs"),
      h("table.table", {}, h("thead", {}, h("tr", {}, ["Run", "State", "Started", "Duration", "Try", "Reason"].map((t) => h("th", { scope: "col" }, t)))), runsBody)),
    h("section.panel", { id: "log" }, h("div.panel-head", {}, logTitle, logActions), logBox));
  const running = await loadRuns();
  if (running) follow(onLeave, FOLLOW_MS * 2, loadRuns);
}

// --------------------------------------------------------------------------
// one Code Asset

export async function codeAssetView(spaceId, assetId) {
  const [space, asset] = await Promise.all([api(`spaces/${spaceId}`), api(`code-assets/${assetId}`)]);
  if (asset.space_id !== space.id) throw new Error(`Code Asset ${assetId} is not in this space.`);
  document.title = `${asset.name} · ${space.display_name} · Spaces`;
  const canEdit = ["owner", "editor"].includes(space.role);
  const versions = asset.versions || [];
  const pick = (id, selected) => h("select", { id, "aria-label": id === "diff-from" ? "From version" : "To version" },
    versions.map((v) => h("option", { value: v.number, selected: v.number === selected }, `version ${v.number}`)));
  const from = pick("diff-from", versions.length > 1 ? versions[1].number : versions[0]?.number);
  const to = pick("diff-to", versions[0]?.number);
  const diffBox = h("pre.diff", { id: "diff" });
  const showDiff = async () => {
    try {
      const d = await api(`code-assets/${assetId}/diff?from=${from.value}&to=${to.value}`);
      diffBox.replaceChildren(...(d.diff ? d.diff.split("\n").map((line) => h("span", {
        class: line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : "",
      }, line + "\n")) : ["The two versions hold the same files."]));
    } catch (e) {
      diffBox.textContent = e.message;
    }
  };
  const restore = async (v) => {
    const into = h("input", { id: "restore-into", placeholder: `e.g. restored/v${v.number} (empty: your space home)` });
    const ok = await confirmDialog({ title: `Restore version ${v.number}?`, body: [
      h("p", {}, "Its files are written into your home in this space; files of the same name there are replaced."),
      h("label", { for: "restore-into" }, "Into folder"), into], confirm: "Restore" });
    if (!ok) return;
    try {
      const answer = await api(`code-assets/${assetId}/versions/${v.number}/restore`, "POST", { into: into.value.trim() });
      flash(`Restored version ${answer.version}: ${answer.restored.join(", ")}.`);
    } catch (e) {
      flash(e.message, "error");
    }
  };
  mount("view",
    h("p.crumbs", {}, h("a", { href: "#/" }, "My spaces"), " / ", h("a", { href: `#/spaces/${space.id}` }, space.display_name), " / ", asset.name),
    h("div.page-head", {}, h("div", {}, h("h1", {}, asset.name),
      h("p.muted", {}, `Code Asset (${asset.kind}) of ${space.display_name} · created by ${asset.created_by} ${ago(asset.created_at)}`))),
    h("section.panel.table-wrap", { id: "versions" },
      h("h2", {}, "Versions"),
      h("table.table", {},
        h("thead", {}, h("tr", {}, ["Version", "Message", "Author", "Saved", "Runs", "Files", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, versions.map((v) => h("tr", { dataset: { version: v.number } },
          h("td", { title: v.hash }, `${v.number} `, h("code.small", {}, v.hash.slice(0, 10))),
          h("td", {}, v.message || h("span.muted", {}, "—")),
          h("td", {}, v.author),
          h("td", { title: v.created_at }, when(v.created_at)),
          h("td", {}, h("code", {}, v.entry)),
          h("td.small", {}, v.files.join(", ")),
          h("td", {}, canEdit ? h("button.small", { "data-action": "restore", onclick: () => restore(v) }, "Restore") : null)))))),
    versions.length > 1 ? h("section.panel", { id: "diff-panel" },
      h("h2", {}, "Changes between versions"),
      h("div.inline", {}, from, " → ", to, h("button", { id: "show-diff", onclick: showDiff }, "Show diff")),
      diffBox) : null);
  if (versions.length > 1) await showDiff();
}
