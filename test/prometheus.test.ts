import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import {
  createMetricsHandler,
  PROMETHEUS_CONTENT_TYPE,
  renderPrometheus,
  SimulatedClock,
  type TransitionEvent,
  UnknownOptionError,
  ValidationError,
} from '../src/index.js';
import { countEvents, freshSchema, testRuntime } from './support/helpers.js';
import { inbox, turns } from './support/steps.js';

// SAMPLE is a sample line of the text format 0.0.4: a name, optional labels (values escaped), a value.
const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/;
const COMMENT =
  /^# (?:HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (?:counter|gauge|histogram)|.*)$/;

// serve mounts a handler on a node:http server on a free port and returns its URL.
async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/metrics`, server };
}

// close stops the server, closing fetch's kept-alive connections rather than waiting for them.
function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

// parse reads the exposition: every line must be a comment or a sample; samples by name and labels.
function parse(text: string): Map<string, number> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const samples = new Map<string, number>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('#')) {
      assert.match(line, COMMENT);
      continue;
    }
    const match = SAMPLE.exec(line);
    assert.ok(match, `not a sample line: ${JSON.stringify(line)}`);
    samples.set(`${match[1]}${match[2] ?? ''}`, Number(match[3]));
  }
  return samples;
}

describe('Prometheus metrics handler', () => {
  it('serves counts, histograms and jobs per state in the text format, to fetch over node:http', async () => {
    const schema = freshSchema('prom');
    const clock = new SimulatedClock();
    const producer = testRuntime({ schema, clock });
    await producer.start();
    const turn = turns(3);
    const worker = testRuntime({
      schema,
      clock,
      maxRunningJobs: 1,
      prefetch: 0,
      tasks: {
        'mail.send': async (payload: { fail?: boolean }) => {
          await turn.take();
          if (payload.fail) throw new Error('smtp down');
        },
      },
    });
    const { url, server } = await serve(createMetricsHandler({ runtime: worker }));
    const claimed = inbox<TransitionEvent>(worker.events, 'job:running');
    const concluded = inbox<TransitionEvent>(worker.events, 'job:transition', (e) => e.from === 'running');
    await producer.enqueueMany([
      { task: 'mail.send', payload: {}, queue: 'mail' },
      { task: 'mail.send', payload: {}, queue: 'mail' },
      { task: 'mail.send', payload: { fail: true }, queue: 'mail', maxAttempts: 1 },
    ]);
    await worker.start();
    // One job at a time: each attempt takes 200 ms of the clock, and the next is claimed when it ends.
    for (let i = 0; i < 3; i++) {
      await claimed();
      clock.advance(200);
      turn.open(i);
      await concluded();
    }
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), PROMETHEUS_CONTENT_TYPE);
    const samples = parse(await response.text());
    const labels = 'task="mail.send",queue="mail"';
    // The producer enqueued: its own registry counted that, not the worker's.
    assert.equal(samples.has(`jobchart_transitions_total{from="none",to="not_started",${labels}}`), false);
    assert.equal(samples.get(`jobchart_transitions_total{from="not_started",to="running",${labels}}`), 3);
    assert.equal(samples.get(`jobchart_transitions_total{from="running",to="succeeded",${labels}}`), 2);
    assert.equal(samples.get(`jobchart_transitions_total{from="running",to="failed",${labels}}`), 1);
    // Each attempt takes 200 ms of the clock: in the 0.25 s bucket, not the 0.1 s one.
    const succeeded = `${labels},outcome="succeeded"`;
    assert.equal(samples.get(`jobchart_attempt_duration_seconds_bucket{${succeeded},le="0.1"}`), 0);
    assert.equal(samples.get(`jobchart_attempt_duration_seconds_bucket{${succeeded},le="0.25"}`), 2);
    assert.equal(samples.get(`jobchart_attempt_duration_seconds_bucket{${succeeded},le="+Inf"}`), 2);
    assert.equal(samples.get(`jobchart_attempt_duration_seconds_count{${succeeded}}`), 2);
    assert.ok(
      Math.abs((samples.get(`jobchart_attempt_duration_seconds_sum{${succeeded}}`) ?? 0) - 0.4) < 1e-9,
    );
    assert.equal(samples.get(`jobchart_attempt_duration_seconds_count{${labels},outcome="failed"}`), 1);
    // One job at a time, each claimed when the one before ended: waits of 0, 0.2 and 0.4 s.
    assert.equal(samples.get(`jobchart_queue_wait_seconds_count{${labels}}`), 3);
    assert.ok(Math.abs((samples.get(`jobchart_queue_wait_seconds_sum{${labels}}`) ?? 0) - 0.6) < 1e-9);
    assert.equal(samples.get(`jobchart_queue_wait_seconds_bucket{${labels},le="0.005"}`), 1);
    // Jobs per state are read from the database at each scrape, every stored state present.
    assert.equal(samples.get('jobchart_jobs{state="succeeded"}'), 2);
    assert.equal(samples.get('jobchart_jobs{state="failed"}'), 1);
    assert.equal(samples.get('jobchart_jobs{state="not_started"}'), 0);
    assert.equal(samples.has('jobchart_jobs{state="removed"}'), false);
    await close(server);
    await worker.stop();
    await producer.stop();
  });

  it('refuses bad options with typed errors', () => {
    assert.throws(
      () => createMetricsHandler({ runtime: {} as never }),
      (error: unknown) => error instanceof ValidationError && error.field === 'createMetricsHandler.runtime',
    );
    assert.throws(
      () => createMetricsHandler({ runtime: { metrics: () => null as never }, runtme: 1 } as never),
      (error: unknown) => error instanceof UnknownOptionError && error.suggestion === 'runtime',
    );
  });

  it('escapes label values and says why jobs per state are missing', () => {
    const text = renderPrometheus({
      transitions: [{ labels: ['none', 'not_started', 'a "quoted" \\ task\nline', 'q'], value: 2 }],
      attemptDuration: [],
      queueWait: [],
      jobs: null,
      jobsError: new Error('connection refused\nsecond line'),
    });
    const samples = parse(text);
    assert.equal(
      samples.get(
        'jobchart_transitions_total{from="none",to="not_started",task="a \\"quoted\\" \\\\ task\\nline",queue="q"}',
      ),
      2,
    );
    assert.match(text, /^# jobs per state unavailable: Error: connection refused/m);
    assert.doesNotMatch(text, /^jobchart_jobs/m);
  });

  it('counts only from when the handler is made, and nothing before anyone asked', async () => {
    const schema = freshSchema('prom');
    const worker = testRuntime({ schema, tasks: { early: () => undefined } });
    await worker.start();
    assert.equal(worker.events.listenerCount('job:transition'), 0, 'no listener while nobody reads metrics');
    const first = countEvents<TransitionEvent>(worker.events, 'job:succeeded', 1);
    await worker.enqueue('early');
    await first;
    const { url, server } = await serve(createMetricsHandler({ runtime: worker }));
    const second = countEvents<TransitionEvent>(worker.events, 'job:succeeded', 1);
    await worker.enqueue('early');
    await second;
    const samples = parse(await (await fetch(url)).text());
    assert.equal(
      samples.get('jobchart_transitions_total{from="running",to="succeeded",task="early",queue="default"}'),
      1,
    );
    assert.equal(samples.get('jobchart_jobs{state="succeeded"}'), 2);
    await close(server);
    await worker.stop();
  });
});
