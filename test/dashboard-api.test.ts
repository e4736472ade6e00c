import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CSRF_HEADER, createDashboard, type Runtime } from '../src/index.js';
import { freshSchema, testRuntime } from './support/helpers.js';

// serve mounts a handler in a node:http server on a free port and returns its base URL.
async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('the dashboard API', () => {
  const schema = freshSchema('dashapi');
  let runtime: Runtime;
  let url: string;
  const servers: Server[] = [];

  before(async () => {
    runtime = testRuntime({ schema });
    await runtime.start();
    const mounted = await serve(createDashboard({ runtime }));
    servers.push(mounted.server);
    url = mounted.url;
  });
  after(async () => {
    for (const server of servers) server.close();
    await runtime.stop();
  });

  const getJson = async (path: string) => {
    const response = await fetch(`${url}${path}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('serves the machines as graphs and drawings, and the stats', async () => {
    const { status, body } = await getJson('/api/machines');
    assert.equal(status, 200);
    const graphs = body.graphs as { job: { states: { id: string }[] } };
    assert.ok(graphs.job.states.some((state) => state.id === 'running'));
    assert.match((body.svg as { job: string }).job, /id="state_succeeded"/);
    const stats = await getJson('/api/stats');
    assert.equal(stats.status, 200);
    assert.equal(typeof (stats.body.counts as Record<string, number>).not_started, 'number');
  });

  it('lists and shows jobs with exactly the actions their state allows, as JSON text', async () => {
    const job = await runtime.enqueue(
      'mail',
      { html: '"><img src=x onerror=alert(1)><script>x</script>' },
      { tags: ['dash'] },
    );
    const list = await getJson('/api/jobs?state=not_started&tag=dash');
    assert.deepEqual(
      (list.body.jobs as { id: string }[]).map((j) => j.id),
      [job.id],
    );
    const one = await getJson(`/api/jobs/${job.id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body.actions, ['cancel', 'remove', 'reschedule']);
    assert.deepEqual((one.body.job as { payload: unknown }).payload, job.payload);
  });

  it('acts only by POST with the session token, as the machine allows', async () => {
    const job = await runtime.enqueue('mail', {});
    const cancelUrl = `${url}/api/jobs/${job.id}/cancel`;
    const without = await fetch(cancelUrl, { method: 'POST' });
    assert.equal(without.status, 403);
    assert.equal((await runtime.getJob(job.id))?.state, 'not_started', 'nothing changed');
    const { body: session } = await getJson('/api/session');
    const headers = { [CSRF_HEADER]: session.csrfToken as string, 'content-type': 'application/json' };
    const cancelled = await fetch(cancelUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ reason: 'no' }),
    });
    assert.equal(cancelled.status, 200);
    assert.equal(((await cancelled.json()) as { job: { state: string } }).job.state, 'cancelled');
    assert.deepEqual((await getJson(`/api/jobs/${job.id}`)).body.actions, ['retry', 'remove']);
    const refused = await fetch(`${url}/api/jobs/${job.id}/reschedule`, {
      method: 'POST',
      headers,
      body: '{"runAt":null}',
    });
    assert.equal(refused.status, 409, 'the machine refuses RESCHEDULE from cancelled');
    assert.equal((await fetch(`${url}/api/jobs/999999/retry`, { method: 'POST', headers })).status, 404);
    const get = await fetch(cancelUrl);
    assert.equal(get.status, 404, 'GET never acts');
  });

  it('refuses bad filters with 400 and the error code, unknown paths with 404', async () => {
    const bad = await getJson('/api/jobs?state=nonsense');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 'VALIDATION');
    assert.equal((await getJson('/api/jobs?stat=failed')).status, 400, 'a misspelled filter is refused');
    assert.equal((await getJson('/api/nothing')).status, 404);
  });

  it('read-only refuses every action; authorize refuses every request it does not allow', async () => {
    const readOnly = await serve(createDashboard({ runtime, readOnly: true }));
    const closed = await serve(
      createDashboard({ runtime, authorize: (req) => req.headers.authorization === 'Bearer ok' }),
    );
    servers.push(readOnly.server, closed.server);
    const job = await runtime.enqueue('mail', {});
    const session = (await (await fetch(`${readOnly.url}/api/session`)).json()) as {
      csrfToken: string;
      readOnly: boolean;
    };
    assert.equal(session.readOnly, true);
    const post = await fetch(`${readOnly.url}/api/jobs/${job.id}/remove`, {
      method: 'POST',
      headers: { [CSRF_HEADER]: session.csrfToken },
    });
    assert.equal(post.status, 403);
    assert.ok(await runtime.getJob(job.id), 'still there');
    assert.equal((await fetch(`${closed.url}/api/stats`)).status, 403);
    assert.equal(
      (await fetch(`${closed.url}/api/stats`, { headers: { authorization: 'Bearer ok' } })).status,
      200,
    );
    assert.throws(() => createDashboard({ runtime, readOnly: 'yes' as unknown as boolean }), /readOnly/);
  });
});
