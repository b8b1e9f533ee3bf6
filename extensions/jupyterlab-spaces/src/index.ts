/**
 * JupyterLab plugin: adds the Spaces sidebar to the left area when JupyterLab runs
 * as a JupyterHub session.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { LabIcon } from '@jupyterlab/ui-components';

import { SpacesClient, serviceBase } from './model';
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

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@jupyterhub-spaces/jupyterlab-spaces:plugin',
  description: 'Spaces sidebar: current space, tools, collaborators, switching',
  autoStart: true,
  optional: [ILabShell],
  activate: (app: JupyterFrontEnd, labShell: ILabShell | null) => {
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
  }
};

export default plugin;
