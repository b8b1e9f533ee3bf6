/**
 * The sidebar's logic without any JupyterLab or DOM dependency: where the spaces
 * service lives, how to talk to it as the logged-in user, and how to describe a
 * space, its tools and its collaborators. Unit-tested with node's test runner.
 */

/** The subset of `fetch` the client needs (injected so tests can drive it). */
export type FetchLike = (
  url: string,
  init?: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    credentials?: 'same-origin' | 'include' | 'omit';
  }
) => Promise<{
  status: number;
  ok: boolean;
  headers: { get(name: string): string | null };
  json(): Promise<any>;
  text(): Promise<string>;
}>;

/** An error answered by the service: its message, and per-field messages. */
export class SpacesError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fields: Record<string, string> = {}
  ) {
    super(message);
    this.name = 'SpacesError';
  }
}

export interface IMissing {
  kind: string;
  id: number;
  name: string;
  reason: string;
  message: string;
}

export interface IAccess {
  mode: string;
  role?: string | null;
  reason?: string;
  missing?: IMissing[];
}

/** GET spaces/{id}/access: the caller's decision, and each member's for owners. */
export interface IAccessAnswer extends IAccess {
  user?: string;
  members?: (IAccess & { user: string })[];
}

/** Each member's access decision by user name (empty unless the caller may see them). */
export function membersAccess(
  answer: IAccessAnswer | undefined
): Record<string, IAccess> {
  const out: Record<string, IAccess> = {};
  for (const member of answer?.members || []) {
    out[member.user] = member;
  }
  return out;
}

export interface ISpace {
  id: number;
  /** the space's short name (unique among its owner's spaces only) */
  slug: string;
  /** the JupyterHub server name of every member's session: `space-<id>` */
  server: string;
  display_name: string;
  owner: string;
  role?: string | null;
  state?: string;
  mode?: string;
  access?: IAccess;
  tools?: string[];
  server_url?: string | null;
}

export interface ICollaborator {
  user: string;
  role: string;
  access?: IAccess;
}

export interface ITool {
  name: string;
  status: string;
  reason?: string;
  url?: string | null;
}

/**
 * The spaces service's URL path, from JupyterLab's page config.
 *
 * JupyterHub gives a single-user server `hubPrefix` (e.g. `/jhub/hub/`); services
 * sit next to it under the same base URL (`/jhub/services/<name>/`).
 */
export function serviceBase(hubPrefix: string, serviceName = 'spaces'): string {
  let base = hubPrefix || '/hub/';
  if (!base.endsWith('/')) {
    base += '/';
  }
  base = base.replace(/hub\/$/, '');
  if (!base.startsWith('/')) {
    base = '/' + base;
  }
  return `${base}services/${encodeURIComponent(serviceName)}/`;
}

/** The items of a paginated list answer, or the list itself. */
export function items<T>(answer: any): T[] {
  if (Array.isArray(answer)) {
    return answer as T[];
  }
  if (answer && Array.isArray(answer.items)) {
    return answer.items as T[];
  }
  return [];
}

/** The space this JupyterLab belongs to: its named server is the space's `server`. */
export function currentSpace(
  spaces: ISpace[],
  serverName: string
): ISpace | undefined {
  if (!serverName) {
    return undefined;
  }
  return spaces.find(s => s.server === serverName);
}

/** The access mode of a space for the caller (sandbox, workbench, locked, …). */
export function modeOf(space: ISpace): string {
  return space.access?.mode || space.mode || 'unknown';
}

const MODE_TEXT: Record<string, string> = {
  workbench: 'Workbench: full access, data may be exported',
  sandbox: 'Sandbox: data stays inside the space',
  locked: 'Locked: a subscription is missing',
  not_member: 'Not a member'
};

/** One line saying what the mode means for the user. */
export function describeMode(mode: string): string {
  return MODE_TEXT[mode] || mode;
}

/** Why a collaborator is locked out of the space, or '' when they are not. */
export function lockReason(access: IAccess | undefined): string {
  if (!access || access.mode !== 'locked') {
    return '';
  }
  const missing = access.missing || [];
  if (missing.length === 0) {
    return access.reason || 'locked';
  }
  return missing
    .map(m => m.message || `${m.reason}: ${m.kind} ${m.name || m.id}`)
    .join('; ');
}

/**
 * The label and whether the launch button is enabled for one tool. JupyterLab is
 * where the sidebar runs: it is shown as the current tool, never launched again.
 */
export function toolTile(tool: ITool): {
  label: string;
  ready: boolean;
  hint: string;
  here?: boolean;
} {
  const label =
    {
      jupyterlab: 'JupyterLab',
      rstudio: 'RStudio',
      superset: 'Superset',
      sqllab: 'SQL Lab'
    }[tool.name] || tool.name;
  if (tool.name === 'jupyterlab') {
    return { label, ready: false, hint: 'this window', here: true };
  }
  if (tool.status === 'ready' && tool.url) {
    return { label, ready: true, hint: `Open ${label}` };
  }
  if (tool.status === 'unavailable') {
    return { label, ready: false, hint: tool.reason || 'unavailable' };
  }
  return { label, ready: false, hint: tool.reason || 'starting…' };
}

/** The confirmation text shown before switching to another space. */
export function switchWarning(
  current: ISpace | undefined,
  target: ISpace
): string {
  const from = current
    ? `“${current.display_name}” will be suspended: save your work first. `
    : '';
  return `${from}Switch to “${target.display_name}”? Its session starts and this page moves there.`;
}

/**
 * A JSON client for the spaces service acting as the logged-in browser user.
 *
 * It never holds a token: the browser sends the service's HubOAuth cookie. The
 * service accepts cookie-authenticated fetches only with the `X-XSRFToken` header
 * matching its `_xsrf` cookie, whose value `connect` obtains (in the browser, from a
 * hidden page of the service that runs the OAuth flow).
 */
export class SpacesClient {
  private xsrf = '';
  private connecting: Promise<void> | null = null;

  constructor(
    readonly base: string,
    private readonly fetchFn: FetchLike,
    private readonly connect: () => Promise<string>
  ) {}

  /** The service's API URL for a path such as `spaces/3`. */
  url(path: string): string {
    return `${this.base}api/v1/${path.replace(/^\//, '')}`;
  }

  /** GET/POST/PATCH/DELETE `path`; JSON in and out; SpacesError on failure. */
  async request(path: string, method = 'GET', body?: unknown): Promise<any> {
    if (!this.xsrf) {
      await this.ensureConnected();
    }
    let response = await this.send(path, method, body);
    if (response.status === 401 || response.status === 403) {
      // the cookie may be missing or expired: run the login once more, then retry
      const text = await response.text();
      if (response.status === 403 && !/log in|logged in|xsrf/i.test(text)) {
        throw errorFrom(response.status, text);
      }
      this.xsrf = '';
      await this.ensureConnected();
      response = await this.send(path, method, body);
    }
    if (response.status === 204) {
      return null;
    }
    const text = await response.text();
    if (!response.ok) {
      throw errorFrom(response.status, text);
    }
    return text ? JSON.parse(text) : null;
  }

  private send(path: string, method: string, body?: unknown) {
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'X-XSRFToken': this.xsrf
    };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
    }
    return this.fetchFn(this.url(path), {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body)
    });
  }

  private ensureConnected(): Promise<void> {
    if (!this.connecting) {
      this.connecting = this.connect()
        .then(token => {
          this.xsrf = token;
        })
        .finally(() => {
          this.connecting = null;
        });
    }
    return this.connecting;
  }
}

/** A SpacesError from an error answer (JSON `{status, error, message, fields}`). */
export function errorFrom(status: number, text: string): SpacesError {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.message === 'string') {
      return new SpacesError(status, body.message, body.fields || {});
    }
  } catch {
    // not JSON: fall through
  }
  return new SpacesError(
    status,
    `the spaces service answered ${status}${text ? ': ' + text.slice(0, 200) : ''}`
  );
}

/** One run of a task, as `GET tasks/{id}` lists its last runs. */
export interface ITaskRun {
  id: number;
  state: string;
  reason?: string;
  started_at?: string;
  duration_seconds?: number | null;
}

/** A task of the space (the fields the sidebar shows). */
export interface ITask {
  id: number;
  name: string;
  owner: string;
  schedule: string | null;
  timezone: string;
  paused: boolean;
  next_run_at?: string | null;
  last_runs?: ITaskRun[];
}

/**
 * The Code Asset name "Save as code asset" proposes for a file browser path: the
 * last part without its notebook or script extension (`jobs/forecast.ipynb` ->
 * `forecast`).
 */
export function codeAssetName(path: string): string {
  const last = path.split('/').filter(Boolean).pop() || '';
  return last.replace(/\.(ipynb|py)$/, '') || last;
}

/** One line about a task: its schedule, and how its last run went. */
export function taskSummary(task: ITask): string {
  const when = task.paused
    ? 'paused'
    : task.schedule
      ? `${task.schedule} (${task.timezone})`
      : 'on demand';
  const last = (task.last_runs || [])[0];
  return last ? `${when} · last run ${last.state}` : `${when} · never ran`;
}
