/**
 * JupyterLab plugin: adds the Spaces sidebar to the left area when JupyterLab runs
 * as a JupyterHub session.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, InputDialog, showErrorMessage } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { LabIcon } from '@jupyterlab/ui-components';

import { SpacesClient, SpacesError, codeAssetName, serviceBase } from './model';
import { SpacesPanel } from './panel';

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161"><rect x="3" y="3" width="8" height="8" rx="2"/><rect x="13" y="3" width="8" height="8" rx="2" opacity=".6"/><rect x="3" y="13" width="8" height="8" rx="2" opacity=".6"/><rect x="13" y="13" width="8" height="8" rx="2"/></g></svg>`;

export const spacesIcon = new LabIcon({
  name: 'jupyterhub-spaces:spaces',
  svgstr: ICON
});

/**
 * Obtain the service's XSRF token as the logged-in user.
 *
 * A hidden frame opens the service's connect page: a plain navigation, so the hub's
 * OAuth flow sets the service cookie and the service sets its `_xsrf` cookie; the
 * page then posts the token to this window (same origin only). No token is ever
 * created for or stored in this page beyond that.
 */
function connectThroughFrame(base: string, timeoutMs = 20000): Promise<string> {
  return new Promise((resolve, reject) => {
    const frame = document.createElement('iframe');
    frame.hidden = true;
    frame.title = 'Spaces login';
    frame.src = `${base}connect`;
    const done = (fn: () => void) => {
      window.removeEventListener('message', onMessage);
      window.clearTimeout(timer);
      frame.remove();
      fn();
    };
    const onMessage = (event: MessageEvent) => {
      if (
        event.origin !== window.location.origin ||
        event.source !== frame.contentWindow ||
        !event.data ||
        event.data.type !== 'jupyterhub-spaces:connect'
      ) {
        return;
      }
      done(() => resolve(String(event.data.xsrf)));
    };
    const timer = window.setTimeout(
      () =>
        done(() =>
          reject(
            new Error(
              'Could not reach the Spaces service: open the Spaces app once to log in, then reload.'
            )
          )
        ),
      timeoutMs
    );
    window.addEventListener('message', onMessage);
    document.body.appendChild(frame);
  });
}

const SAVE_COMMAND = 'jupyterhub-spaces:save-code-asset';

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@jupyterhub-spaces/jupyterlab-spaces:plugin',
  description:
    'Spaces sidebar: current space, tools, collaborators, tasks, switching; Save as code asset',
  autoStart: true,
  optional: [ILabShell, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell | null,
    browser: IDefaultFileBrowser | null
  ) => {
    const hubPrefix = PageConfig.getOption('hubPrefix');
    const base = serviceBase(hubPrefix || '/hub/');
    const client = new SpacesClient(
      base,
      (url, init) => window.fetch(url, init),
      () =>
        hubPrefix
          ? connectThroughFrame(base)
          : Promise.reject(
              new Error(
                'This JupyterLab does not run under JupyterHub: Spaces are not available here.'
              )
            )
    );
    const panel = new SpacesPanel({
      client,
      appUrl: base,
      serverName: PageConfig.getOption('hubServerName'),
      userName: PageConfig.getOption('hubUser')
    });
    panel.title.icon = spacesIcon;
    app.shell.add(panel, 'left', { rank: 50 });
    void labShell;

    // A session opens on the Spaces panel, once per browser tab and server: later
    // loads keep whichever panel the user chose since
    if (hubPrefix) {
      const key = `jupyterhub-spaces:opened:${PageConfig.getOption('hubServerName')}`;
      void app.restored.then(() => {
        try {
          if (window.sessionStorage.getItem(key)) {
            return;
          }
          window.sessionStorage.setItem(key, '1');
        } catch {
          // no session storage (a locked-down browser): open it every time
        }
        app.shell.activateById(panel.id);
      });
    }

    // File browser › right-click › Save as code asset: a version of the space's
    // Code Asset, read by the service from the space home (the session's root)
    app.commands.addCommand(SAVE_COMMAND, {
      label: 'Save as code asset',
      caption: 'Save this notebook, script or folder as a version a task can run',
      isVisible: () => !!browser && !!hubPrefix,
      execute: async () => {
        const item = browser?.selectedItems().next();
        const path = item && !item.done ? item.value.path : '';
        if (!path) {
          return;
        }
        const name = await InputDialog.getText({
          title: `Save “${path}” as a code asset`,
          label: 'Code asset name (a new version if it exists)',
          text: codeAssetName(path),
          okLabel: 'Save'
        });
        if (!name.button.accept || !name.value) {
          return;
        }
        const note = await InputDialog.getText({
          title: 'What changed in this version?',
          label: 'Message (optional)',
          text: '',
          okLabel: 'Save'
        });
        if (!note.button.accept) {
          return;
        }
        try {
          const saved = await panel.saveCodeAsset(path, name.value.trim(), note.value || '');
          void new Dialog({
            title: 'Saved as code asset',
            body: saved.new_version
              ? `“${saved.name}” version ${saved.version.number} is saved: create a task from it in the Spaces app.`
              : `“${saved.name}” has not changed since version ${saved.version.number}: no new version.`,
            buttons: [Dialog.okButton()]
          }).launch();
        } catch (e) {
          const text =
            e instanceof SpacesError
              ? [e.message, ...Object.values(e.fields)].filter((v, i, a) => a.indexOf(v) === i).join(' ')
              : String(e);
          void showErrorMessage('Could not save the code asset', text);
        }
      }
    });
    app.contextMenu.addItem({
      command: SAVE_COMMAND,
      selector: '.jp-DirListing-item[data-isdir]',
      rank: 12
    });
  }
};

export default plugin;
