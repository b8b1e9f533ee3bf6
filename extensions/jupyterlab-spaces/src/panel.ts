/**
 * The Spaces sidebar: the current space, its tools, collaborators and the user's
 * other spaces. Plain DOM built with textContent only (names come from users).
 */
import { Widget } from '@lumino/widgets';

import {
  IAccessAnswer,
  ICollaborator,
  ISpace,
  ITask,
  ITool,
  SpacesClient,
  SpacesError,
  currentSpace,
  describeMode,
  items,
  lockReason,
  membersAccess,
  modeOf,
  switchWarning,
  taskSummary,
  toolTile
} from './model';

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') {
      node.className = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    node.append(child);
  }
  return node;
}

export interface IPanelOptions {
  client: SpacesClient;
  /** the service's base path (the Spaces app) */
  appUrl: string;
  /** the named server this JupyterLab runs in: the current space's `server` */
  serverName: string;
  userName: string;
}

/** The sidebar widget. */
export class SpacesPanel extends Widget {
  private readonly opts: IPanelOptions;
  private readonly body: HTMLElement;
  private readonly status: HTMLElement;
  private timer = 0;

  constructor(opts: IPanelOptions) {
    super();
    this.opts = opts;
    this.id = 'jupyterhub-spaces-panel';
    this.addClass('jp-SpacesPanel');
    this.title.caption = 'Spaces';
    const header = el(
      'header',
      { class: 'jp-SpacesPanel-header' },
      el('h2', {}, 'Spaces'),
      el('span', { class: 'jp-SpacesPanel-user' }, opts.userName),
      el(
        'a',
        {
          href: opts.appUrl,
          target: '_blank',
          rel: 'noopener',
          class: 'jp-SpacesPanel-applink'
        },
        'Open the Spaces app ↗'
      )
    );
    this.status = el('p', { class: 'jp-SpacesPanel-status', role: 'status' });
    this.body = el('div', { class: 'jp-SpacesPanel-body' });
    this.node.append(header, this.status, this.body);
  }

  protected onAfterAttach(): void {
    void this.refresh();
    // tool status changes while the session starts its tools
    this.timer = window.setInterval(() => void this.refreshTools(), 5000);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this.timer);
  }

  private say(text: string, error = false): void {
    this.status.textContent = text;
    this.status.classList.toggle('jp-mod-error', error);
  }

  private current: ISpace | undefined;

  /** Reload everything from the service. */
  async refresh(): Promise<void> {
    const { client } = this.opts;
    this.say('Loading…');
    try {
      const spaces = items<ISpace>(await client.request('spaces?limit=500'));
      this.current = currentSpace(spaces, this.opts.serverName);
      const others = spaces.filter(s => s !== this.current);
      const sections: HTMLElement[] = [];
      if (this.current) {
        this.access = undefined;
        try {
          this.access = await client.request(`spaces/${this.current.id}/access`);
        } catch {
          // the list's summary is good enough
        }
        sections.push(this.currentSection(this.current));
        sections.push(await this.toolsSection(this.current));
        sections.push(await this.collaboratorsSection(this.current));
        sections.push(this.tasksSection);
        await this.refreshTasks();
      } else {
        sections.push(
          el(
            'section',
            {},
            el(
              'p',
              {},
              'This JupyterLab is not a space session. Pick a space below or in the Spaces app.'
            )
          )
        );
      }
      sections.push(this.othersSection(others));
      this.body.replaceChildren(...sections);
      this.say('');
    } catch (e) {
      this.say(message(e), true);
    }
  }

  private access: IAccessAnswer | undefined;

  private currentSection(space: ISpace): HTMLElement {
    const access = this.access || space.access;
    const mode = access?.mode || modeOf(space);
    return el(
      'section',
      { class: 'jp-SpacesPanel-current', 'aria-label': 'Current space' },
      el('h3', {}, 'Current space'),
      el('p', { class: 'jp-SpacesPanel-name' }, space.display_name),
      el(
        'p',
        {},
        el('span', { class: `jp-SpacesPanel-badge jp-mod-${mode}` }, mode),
        ' ',
        describeMode(mode)
      )
    );
  }

  private toolsList = el('ul', { class: 'jp-SpacesPanel-tools' });

  private async toolsSection(space: ISpace): Promise<HTMLElement> {
    await this.refreshTools(space);
    return el(
      'section',
      { 'aria-label': 'Tools' },
      el('h3', {}, 'Tools'),
      this.toolsList
    );
  }

  private async refreshTools(space = this.current): Promise<void> {
    if (!space) {
      return;
    }
    let tools: ITool[];
    try {
      const answer = await this.opts.client.request(`spaces/${space.id}/tools`);
      tools = answer?.tools || items<ITool>(answer);
    } catch (e) {
      this.toolsList.replaceChildren(el('li', {}, message(e)));
      return;
    }
    this.toolsList.replaceChildren(
      ...tools.map(tool => {
        const tile = toolTile(tool);
        const button = el(
          'button',
          { class: 'jp-SpacesPanel-button', title: tile.hint },
          tile.here ? 'open' : tile.ready ? 'Launch' : tool.status
        );
        button.disabled = !tile.ready;
        button.addEventListener('click', () => {
          if (tool.url) {
            window.open(tool.url, '_blank', 'noopener');
          }
        });
        return el(
          'li',
          { 'data-tool': tool.name },
          el('span', { class: 'jp-SpacesPanel-toolname' }, tile.label),
          el('span', { class: 'jp-SpacesPanel-hint' }, tile.hint),
          button
        );
      })
    );
  }

  private tasksList = el('ul', { class: 'jp-SpacesPanel-tasks' });
  private assetsList = el('ul', { class: 'jp-SpacesPanel-assets' });
  private tasksSection = el(
    'section',
    { 'aria-label': 'Tasks' },
    el('h3', {}, 'Tasks'),
    this.tasksList,
    el('h3', {}, 'Code assets'),
    this.assetsList
  );

  /** The current space's tasks (run now from here) and Code Assets. */
  async refreshTasks(space = this.current): Promise<void> {
    if (!space) {
      return;
    }
    const { client, appUrl } = this.opts;
    const canEdit = space.role === 'owner' || space.role === 'editor';
    try {
      const [tasks, assets] = await Promise.all([
        client.request(`spaces/${space.id}/tasks`),
        client.request(`spaces/${space.id}/code-assets`)
      ]);
      const taskItems = items<ITask>(tasks).map(task => {
        const run = el(
          'button',
          { class: 'jp-SpacesPanel-button', title: 'Start a run now' },
          'Run now'
        );
        run.disabled = !canEdit || task.paused;
        run.addEventListener('click', async () => {
          run.disabled = true;
          try {
            await client.request(`tasks/${task.id}/run`, 'POST');
            this.say(`“${task.name}” started: follow it in the Spaces app.`);
          } catch (e) {
            this.say(message(e), true);
          }
          run.disabled = false;
        });
        return el(
          'li',
          { 'data-task': task.name },
          el(
            'a',
            {
              href: `${appUrl}#/spaces/${space.id}/tasks/${task.id}`,
              target: '_blank',
              rel: 'noopener',
              class: 'jp-SpacesPanel-name'
            },
            task.name
          ),
          el('span', { class: 'jp-SpacesPanel-hint' }, taskSummary(task)),
          run
        );
      });
      this.tasksList.replaceChildren(
        ...(taskItems.length
          ? taskItems
          : [el('li', {}, 'No tasks yet: create one in the Spaces app.')])
      );
      const assetItems = items<any>(assets).map(a =>
        el(
          'li',
          { 'data-asset': a.name },
          el(
            'a',
            {
              href: `${appUrl}#/spaces/${space.id}/code-assets/${a.id}`,
              target: '_blank',
              rel: 'noopener',
              class: 'jp-SpacesPanel-name'
            },
            a.name
          ),
          el(
            'span',
            { class: 'jp-SpacesPanel-hint' },
            `version ${a.latest_version ?? '–'}`
          )
        )
      );
      this.assetsList.replaceChildren(
        ...(assetItems.length
          ? assetItems
          : [
              el(
                'li',
                {},
                'None yet: right-click a notebook, script or folder › Save as code asset.'
              )
            ])
      );
    } catch (e) {
      this.tasksList.replaceChildren(el('li', {}, message(e)));
    }
  }

  /**
   * Save a file or folder of the space home (a file browser path: the session's
   * root is the space home) as a new version of the Code Asset `name`.
   */
  async saveCodeAsset(path: string, name: string, note: string): Promise<any> {
    if (!this.current) {
      await this.refresh();
    }
    const space = this.current;
    if (!space) {
      throw new SpacesError(
        409,
        'This JupyterLab is not a space session: open the space first, then save.'
      );
    }
    const saved = await this.opts.client.request(
      `spaces/${space.id}/code-assets`,
      'POST',
      { name, path, message: note }
    );
    this.say(
      saved.new_version
        ? `Saved “${saved.name}” as version ${saved.version.number}.`
        : `“${saved.name}” is unchanged: still version ${saved.version.number}.`
    );
    await this.refreshTasks(space);
    return saved;
  }

  private async collaboratorsSection(space: ISpace): Promise<HTMLElement> {
    const { client } = this.opts;
    let people: ICollaborator[] = [];
    let error = '';
    try {
      people = items<ICollaborator>(
        await client.request(`spaces/${space.id}/collaborators`)
      );
    } catch (e) {
      error = message(e);
    }
    const list = el('ul', { class: 'jp-SpacesPanel-people' });
    const decisions = membersAccess(this.access);
    for (const person of people) {
      person.access = decisions[person.user] || person.access;
      const reason = lockReason(person.access);
      list.append(
        el(
          'li',
          { 'data-user': person.user },
          el('span', { class: 'jp-SpacesPanel-person' }, person.user),
          el('span', { class: 'jp-SpacesPanel-role' }, person.role),
          reason
            ? el(
                'span',
                { class: 'jp-SpacesPanel-badge jp-mod-locked', title: reason },
                'locked'
              )
            : el(
                'span',
                {
                  class: `jp-SpacesPanel-badge jp-mod-${person.access?.mode || 'member'}`,
                  title: describeMode(person.access?.mode || '')
                },
                person.access?.mode || 'member'
              ),
          reason ? el('span', { class: 'jp-SpacesPanel-why' }, reason) : ''
        )
      );
    }
    const section = el(
      'section',
      { 'aria-label': 'Collaborators' },
      el('h3', {}, 'Collaborators'),
      error ? el('p', { class: 'jp-mod-error' }, error) : list
    );
    if (space.role === 'owner') {
      section.append(this.inviteForm(space));
    }
    return section;
  }

  private inviteForm(space: ISpace): HTMLElement {
    const listId = `jp-SpacesPanel-users-${space.id}`;
    const input = el('input', {
      type: 'text',
      name: 'user',
      list: listId,
      placeholder: 'user name',
      'aria-label': 'User to invite',
      autocomplete: 'off'
    });
    const options = el('datalist', { id: listId });
    const role = el(
      'select',
      { name: 'role', 'aria-label': 'Role' },
      ...['viewer', 'editor', 'publisher'].map(r => el('option', { value: r }, r))
    );
    const error = el('p', { class: 'jp-SpacesPanel-fielderror', role: 'alert' });
    const form = el(
      'form',
      { class: 'jp-SpacesPanel-invite', 'aria-label': 'Invite a collaborator' },
      el('label', {}, 'Invite'),
      input,
      options,
      role,
      el('button', { type: 'submit', class: 'jp-SpacesPanel-button' }, 'Invite'),
      error
    );
    input.addEventListener('input', async () => {
      const q = input.value.trim();
      if (q.length < 1) {
        return;
      }
      try {
        const users = items<any>(
          await this.opts.client.request(
            `users?q=${encodeURIComponent(q)}&limit=20`
          )
        );
        options.replaceChildren(
          ...users.map(u => el('option', { value: u.name || String(u) }))
        );
      } catch {
        // suggestions are a convenience
      }
    });
    form.addEventListener('submit', async event => {
      event.preventDefault();
      error.textContent = '';
      try {
        await this.opts.client.request(
          `spaces/${space.id}/collaborators`,
          'POST',
          { user: input.value.trim(), role: role.value }
        );
        this.say(`Invited ${input.value.trim()} as ${role.value}.`);
        input.value = '';
        await this.refresh();
      } catch (e) {
        const fields = e instanceof SpacesError ? e.fields : {};
        error.textContent = fields.user || fields.role || message(e);
      }
    });
    return form;
  }

  private othersSection(others: ISpace[]): HTMLElement {
    const list = el('ul', { class: 'jp-SpacesPanel-others' });
    for (const space of others) {
      const mode = modeOf(space);
      const button = el(
        'button',
        { class: 'jp-SpacesPanel-button' },
        this.current ? 'Switch' : 'Activate'
      );
      button.disabled = mode === 'locked' || mode === 'not_member';
      button.addEventListener('click', () => void this.switchTo(space));
      list.append(
        el(
          'li',
          { 'data-space': space.slug },
          el('span', { class: 'jp-SpacesPanel-name' }, space.display_name),
          el('span', { class: `jp-SpacesPanel-badge jp-mod-${mode}` }, mode),
          button
        )
      );
    }
    if (!others.length) {
      list.append(el('li', {}, 'No other spaces.'));
    }
    return el(
      'section',
      { 'aria-label': 'My other spaces' },
      el('h3', {}, 'My other spaces'),
      list
    );
  }

  private async switchTo(space: ISpace): Promise<void> {
    if (!window.confirm(switchWarning(this.current, space))) {
      return;
    }
    this.say(`Switching to ${space.display_name}…`);
    try {
      await this.opts.client.request(
        `spaces/${space.id}/activate?switch=true`,
        'POST'
      );
      // the Spaces app shows the new session's progress and opens it when ready
      window.location.assign(`${this.opts.appUrl}#/spaces/${space.id}`);
    } catch (e) {
      this.say(message(e), true);
    }
  }
}

function message(e: unknown): string {
  if (e instanceof Error) {
    return e.message;
  }
  return String(e);
}
