/**
 * The sidebar's pure logic: service URL, current space, lock reasons, tool tiles
 * and the client's XSRF / reconnect behaviour against a scripted fetch.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';

import {
  FetchLike,
  SpacesClient,
  SpacesError,
  codeAssetName,
  currentSpace,
  lockReason,
  membersAccess,
  serviceBase,
  switchWarning,
  taskSummary,
  toolTile
} from '../src/model';

test('the service sits next to the hub under the same base URL', () => {
  assert.equal(serviceBase('/hub/'), '/services/spaces/');
  assert.equal(serviceBase('/jhub/hub/'), '/jhub/services/spaces/');
  assert.equal(serviceBase('/jhub/hub'), '/jhub/services/spaces/');
  assert.equal(serviceBase(''), '/services/spaces/');
  assert.equal(serviceBase('/hub/', 'my spaces'), '/services/my%20spaces/');
});

test('the current space is the one whose server is the server name, not its slug', () => {
  const spaces = [
    { id: 1, slug: 'sales', server: 'space-1', display_name: 'Sales', owner: 'alice' },
    { id: 2, slug: 'sales', server: 'space-2', display_name: 'Sales', owner: 'bob' },
    { id: 3, slug: 'churn', server: 'space-3', display_name: 'Churn', owner: 'alice' }
  ];
  assert.equal(currentSpace(spaces, 'space-3')?.id, 3);
  assert.equal(currentSpace(spaces, 'space-2')?.id, 2);
  assert.equal(currentSpace(spaces, 'churn'), undefined);
  assert.equal(currentSpace(spaces, ''), undefined);
  assert.equal(currentSpace(spaces, 'other'), undefined);
});

test('a locked collaborator is told which subscription is missing', () => {
  assert.equal(lockReason({ mode: 'workbench' }), '');
  assert.equal(lockReason(undefined), '');
  const reason = lockReason({
    mode: 'locked',
    missing: [
      {
        kind: 'product',
        id: 4,
        name: 'Retail sales',
        reason: 'missing',
        message: "no subscription to product 'Retail sales'"
      },
      { kind: 'asset', id: 9, name: 'stores', reason: 'expired', message: '' }
    ]
  });
  assert.match(reason, /Retail sales/);
  assert.match(reason, /expired: asset stores/);
});

test('a tool can be launched only when ready with a URL', () => {
  assert.deepEqual(toolTile({ name: 'superset', status: 'ready', url: '/x/' }), {
    label: 'Superset',
    ready: true,
    hint: 'Open Superset'
  });
  assert.equal(toolTile({ name: 'superset', status: 'ready' }).ready, false);
  const gone = toolTile({ name: 'rstudio', status: 'unavailable', reason: 'rserver not installed' });
  assert.equal(gone.ready, false);
  assert.equal(gone.hint, 'rserver not installed');
  assert.equal(toolTile({ name: 'sqllab', status: 'waiting' }).label, 'SQL Lab');
  // the sidebar runs inside JupyterLab: never offered as a launch
  const lab = toolTile({ name: 'jupyterlab', status: 'ready', url: '/user/a/s/lab' });
  assert.equal(lab.ready, false);
  assert.equal(lab.here, true);
});

test('switching warns that the current space is suspended', () => {
  const a = { id: 1, slug: 'a', server: 'space-1', display_name: 'Alpha', owner: 'x' };
  const b = { id: 2, slug: 'b', server: 'space-2', display_name: 'Beta', owner: 'x' };
  assert.match(switchWarning(a, b), /Alpha.*suspended.*Beta/);
  assert.doesNotMatch(switchWarning(undefined, b), /suspended/);
});

type Call = { url: string; method: string; headers: Record<string, string>; body?: string };

function scripted(answers: Array<[number, unknown]>): { fetch: FetchLike; calls: Call[] } {
  const calls: Call[] = [];
  const fetch: FetchLike = async (url, init = {}) => {
    calls.push({
      url,
      method: init.method || 'GET',
      headers: init.headers || {},
      body: init.body
    });
    const [status, body] = answers.shift() || [500, { message: 'unexpected call' }];
    const text = body === undefined ? '' : JSON.stringify(body);
    return {
      status,
      ok: status >= 200 && status < 300,
      headers: { get: () => null },
      json: async () => JSON.parse(text),
      text: async () => text
    };
  };
  return { fetch, calls };
}

test('every request carries the XSRF token from connect, never a token header', async () => {
  const { fetch, calls } = scripted([[200, { items: [] }], [201, { user: 'bob' }]]);
  let connects = 0;
  const client = new SpacesClient('/services/spaces/', fetch, async () => {
    connects++;
    return 'tok1';
  });
  await client.request('spaces');
  await client.request('spaces/3/collaborators', 'POST', { user: 'bob', role: 'viewer' });
  assert.equal(connects, 1);
  assert.equal(calls[0].url, '/services/spaces/api/v1/spaces');
  assert.equal(calls[1].method, 'POST');
  assert.equal(calls[1].body, JSON.stringify({ user: 'bob', role: 'viewer' }));
  for (const call of calls) {
    assert.equal(call.headers['X-XSRFToken'], 'tok1');
    assert.equal(call.headers['Authorization'], undefined);
  }
});

test('a 401 reconnects once and retries with the new token', async () => {
  const { fetch, calls } = scripted([
    [401, { status: 401, message: 'not logged in' }],
    [200, { ok: true }]
  ]);
  const tokens = ['old', 'new'];
  const client = new SpacesClient('/s/', fetch, async () => tokens.shift() as string);
  assert.deepEqual(await client.request('me'), { ok: true });
  assert.equal(calls.length, 2);
  assert.equal(calls[1].headers['X-XSRFToken'], 'new');
});

test('a refusal becomes a SpacesError with the field messages', async () => {
  const { fetch } = scripted([
    [422, { status: 422, error: 'Unprocessable', message: 'bad user', fields: { user: 'not visible' } }]
  ]);
  const client = new SpacesClient('/s/', fetch, async () => 't');
  await assert.rejects(client.request('spaces/1/collaborators', 'POST', {}), (e: unknown) => {
    assert.ok(e instanceof SpacesError);
    assert.equal(e.status, 422);
    assert.equal(e.message, 'bad user');
    assert.deepEqual(e.fields, { user: 'not visible' });
    return true;
  });
});

test('a 403 that is not about login is not retried', async () => {
  const { fetch, calls } = scripted([
    [403, { status: 403, message: 'only owners may invite' }]
  ]);
  const client = new SpacesClient('/s/', fetch, async () => 't');
  await assert.rejects(client.request('x', 'POST', {}), /only owners may invite/);
  assert.equal(calls.length, 1);
});

test('members decisions are indexed by user for the collaborator list', () => {
  const byUser = membersAccess({
    mode: 'workbench',
    members: [
      { user: 'alice', mode: 'workbench' },
      { user: 'carol', mode: 'locked', missing: [] }
    ]
  });
  assert.equal(byUser.carol.mode, 'locked');
  assert.equal(byUser.alice.mode, 'workbench');
  assert.deepEqual(membersAccess(undefined), {});
  assert.deepEqual(membersAccess({ mode: 'sandbox' }), {});
});

test('a code asset is named after the file or folder it is saved from', () => {
  assert.equal(codeAssetName('forecast.ipynb'), 'forecast');
  assert.equal(codeAssetName('jobs/nightly/refresh.py'), 'refresh');
  assert.equal(codeAssetName('jobs/nightly/'), 'nightly');
  assert.equal(codeAssetName('data.csv'), 'data.csv');
});

test('a task is summed up by its schedule and its last run', () => {
  const base = { id: 1, name: 'n', owner: 'alice', schedule: '0 6 * * *', timezone: 'UTC', paused: false };
  assert.equal(taskSummary({ ...base }), '0 6 * * * (UTC) · never ran');
  assert.equal(
    taskSummary({ ...base, last_runs: [{ id: 2, state: 'success' }, { id: 1, state: 'failed' }] }),
    '0 6 * * * (UTC) · last run success'
  );
  assert.equal(taskSummary({ ...base, paused: true }), 'paused · never ran');
  assert.equal(taskSummary({ ...base, schedule: null }), 'on demand · never ran');
});
