import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { context, metrics, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { SimulatedClock, type TransitionEvent, ValidationError } from '../src/index.js';
import { loadOpenTelemetry } from '../src/telemetry/otel-loader.js';
import { databaseUrl, freshSchema, nextEvent, testRuntime } from './support/helpers.js';
import { inbox, turns } from './support/steps.js';

// OpenTelemetry's globals can be set once per process: this file sets them once, before every test,
// and each test tells its own spans and points apart by a task name no other test uses.
const spans = new InMemorySpanExporter();
const reader = new PeriodicExportingMetricReader({
  exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
  // Collected by hand (reader.collect()); the period only has to be longer than the file.
  exportIntervalMillis: 3_600_000,
});
const tracer = () => trace.getTracer('test');

before(() => {
  const contextManager = new AsyncLocalStorageContextManager();
  contextManager.enable();
  assert.ok(context.setGlobalContextManager(contextManager));
  assert.ok(propagation.setGlobalPropagator(new W3CTraceContextPropagator()));
  assert.ok(
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
    ),
  );
  assert.ok(metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] })));
});

after(async () => {
  await reader.shutdown();
});

function spansOf(task: string): ReadableSpan[] {
  return spans.getFinishedSpans().filter((span) => span.attributes['jobchart.task'] === task);
}

// points returns the data points of metric `name` whose attributes include `match`.
async function points(name: string, match: Record<string, string>): Promise<DataPoint<unknown>[]> {
  const { resourceMetrics } = await reader.collect();
  const metric = resourceMetrics.scopeMetrics
    .filter((scope) => scope.scope.name === 'jobchart')
    .flatMap((scope) => scope.metrics)
    .find((m) => m.descriptor.name === name);
  if (!metric) return [];
  return (metric.dataPoints as DataPoint<unknown>[]).filter((point) =>
    Object.entries(match).every(([key, value]) => point.attributes[key] === value),
  );
}

describe('OpenTelemetry traces', () => {
  it('carries the enqueuer’s trace to the attempt span in another runtime; the handler’s spans are its children', async () => {
    const schema = freshSchema('otel');
    const producer = testRuntime({ schema });
    await producer.start();
    const consumer = testRuntime({
      schema,
      tasks: {
        traced: () => {
          tracer().startActiveSpan('inside the handler', (span) => span.end());
          return 'done';
        },
      },
    });
    const succeeded = nextEvent<TransitionEvent>(consumer.events, 'job:succeeded');
    const { job, request } = await tracer().startActiveSpan('request', async (span) => {
      const enqueued = await producer.enqueue('traced', { n: 1 });
      span.end();
      return { job: enqueued, request: span.spanContext() };
    });
    assert.match(
      job.traceContext?.traceparent ?? '',
      new RegExp(`^00-${request.traceId}-${request.spanId}-01$`),
    );
    await consumer.start();
    await succeeded;
    const [attempt, ...others] = spansOf('traced');
    assert.equal(others.length, 0, 'one attempt, one span');
    assert.ok(attempt);
    assert.equal(attempt.name, 'process traced');
    assert.equal(attempt.kind, SpanKind.CONSUMER);
    assert.equal(attempt.spanContext().traceId, request.traceId);
    assert.equal(attempt.parentSpanContext?.spanId, request.spanId);
    assert.deepEqual(
      {
        system: attempt.attributes['messaging.system'],
        destination: attempt.attributes['messaging.destination.name'],
        id: attempt.attributes['messaging.message.id'],
        attempt: attempt.attributes['jobchart.job.attempt'],
        outcome: attempt.attributes['jobchart.job.outcome'],
      },
      { system: 'jobchart', destination: 'default', id: job.id, attempt: 1, outcome: 'succeeded' },
    );
    assert.equal(attempt.status.code, SpanStatusCode.UNSET);
    const inner = spans.getFinishedSpans().find((span) => span.name === 'inside the handler');
    assert.ok(inner, 'the handler’s span was exported');
    assert.equal(inner.spanContext().traceId, request.traceId);
    assert.equal(inner.parentSpanContext?.spanId, attempt.spanContext().spanId);
    await consumer.stop();
    await producer.stop();
  });

  it('gives every job of an enqueueMany the active context, and none without an active span', async () => {
    const schema = freshSchema('otel');
    const producer = testRuntime({ schema });
    await producer.start();
    const { jobs, traceId } = await tracer().startActiveSpan('batch', async (span) => {
      const many = await producer.enqueueMany([
        { task: 'batched' },
        { task: 'batched' },
        { task: 'batched' },
      ]);
      span.end();
      return { jobs: many, traceId: span.spanContext().traceId };
    });
    assert.equal(new Set(jobs.map((job) => job.traceContext?.traceparent)).size, 1);
    assert.ok(jobs[0]?.traceContext?.traceparent?.includes(traceId));
    const stored = await producer.getJob(jobs[1]?.id as string);
    assert.deepEqual(stored?.traceContext, jobs[1]?.traceContext);
    const untraced = await producer.enqueue('batched');
    assert.equal(untraced.traceContext, null);
    await producer.stop();
  });

  it('ends a throwing handler’s span with ERROR status and its exception, and the outcome the job met', async () => {
    const schema = freshSchema('otel');
    const worker = testRuntime({
      schema,
      tasks: {
        throwing: () => {
          throw new TypeError('no such thing');
        },
      },
    });
    await worker.start();
    const retried = nextEvent<TransitionEvent>(worker.events, 'job:retry');
    const failed = nextEvent<TransitionEvent>(worker.events, 'job:failed');
    await worker.enqueue('throwing', {}, { maxAttempts: 1 });
    await worker.enqueue('throwing', {}, { maxAttempts: 2, runAt: new Date(Date.now() + 3_600_000) });
    await failed;
    const [span] = spansOf('throwing');
    assert.ok(span);
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.equal(span.status.message, 'TypeError: no such thing');
    assert.equal(span.attributes['error.type'], 'TypeError');
    assert.equal(span.attributes['jobchart.job.outcome'], 'failed');
    const exception = span.events.find((event) => event.name === 'exception');
    assert.equal(exception?.attributes?.['exception.type'], 'TypeError');
    assert.equal(exception?.attributes?.['exception.message'], 'no such thing');
    // The second job, due later, is retried when rescheduled now: its span says retry.
    const later = (await worker.listJobs({ task: 'throwing', state: 'not_started' })).jobs[0];
    assert.ok(later);
    await worker.reschedule(later.id, new Date());
    await retried;
    const retry = spansOf('throwing').find((s) => s.attributes['messaging.message.id'] === later.id);
    assert.equal(retry?.attributes['jobchart.job.outcome'], 'retry');
    await worker.stop();
  });

  it('traces nothing and injects nothing with telemetry: false', async () => {
    const schema = freshSchema('otel');
    const worker = testRuntime({ schema, telemetry: false, tasks: { untraced: () => undefined } });
    await worker.start();
    const done = nextEvent<TransitionEvent>(worker.events, 'job:succeeded');
    const job = await tracer().startActiveSpan('request', async (span) => {
      const enqueued = await worker.enqueue('untraced');
      span.end();
      return enqueued;
    });
    await done;
    assert.equal(job.traceContext, null);
    assert.deepEqual(spansOf('untraced'), []);
    await worker.stop();
    assert.throws(
      () => testRuntime({ schema, telemetry: 'off' as unknown as boolean }),
      (error: unknown) => error instanceof ValidationError && error.field === 'telemetry',
    );
  });
});

describe('OpenTelemetry metrics', () => {
  it('counts transitions and measures attempts and queue waits, by task, queue and outcome', async () => {
    const schema = freshSchema('otel');
    const clock = new SimulatedClock();
    const producer = testRuntime({ schema, clock });
    await producer.start();
    const turn = turns(4);
    const worker = testRuntime({
      schema,
      clock,
      maxRunningJobs: 1,
      prefetch: 0,
      tasks: {
        measured: async (payload: { fail?: boolean }) => {
          await turn.take();
          if (payload.fail) throw new Error('measured failure');
        },
      },
    });
    const claimed = inbox<TransitionEvent>(worker.events, 'job:running');
    const concluded = inbox<TransitionEvent>(worker.events, 'job:transition', (e) => e.from === 'running');
    await producer.enqueueMany([
      { task: 'measured', payload: {}, queue: 'q1' },
      { task: 'measured', payload: {}, queue: 'q1' },
      { task: 'measured', payload: {}, queue: 'q1' },
      { task: 'measured', payload: { fail: true }, queue: 'q1', maxAttempts: 1 },
    ]);
    clock.advance(3_000);
    await worker.start();
    // One job at a time: each attempt takes 2 s of the clock, and the next is claimed when it ends.
    for (let i = 0; i < 4; i++) {
      await claimed();
      clock.advance(2_000);
      turn.open(i);
      await concluded();
    }
    const count = async (from: string, to: string) =>
      (
        await points('jobchart.job.transitions', {
          'jobchart.task': 'measured',
          'jobchart.job.from_state': from,
          'jobchart.job.to_state': to,
          'messaging.destination.name': 'q1',
        })
      ).reduce((sum, point) => sum + (point.value as number), 0);
    // The producer enqueued (its own counter), the worker claimed and concluded.
    assert.equal(await count('none', 'not_started'), 4);
    assert.equal(await count('not_started', 'running'), 4);
    assert.equal(await count('running', 'succeeded'), 3);
    assert.equal(await count('running', 'failed'), 1);
    const consumed = await points('messaging.client.consumed.messages', { 'jobchart.task': 'measured' });
    assert.equal(
      consumed.reduce((sum, point) => sum + (point.value as number), 0),
      4,
    );
    const durations = await points('messaging.process.duration', { 'jobchart.task': 'measured' });
    const byOutcome = Object.fromEntries(
      durations.map((point) => [point.attributes['jobchart.job.outcome'], point.value as Histogram]),
    );
    assert.equal(byOutcome.succeeded?.count, 3);
    assert.equal(byOutcome.succeeded?.sum, 6, 'three attempts of 2 s each');
    assert.equal(byOutcome.failed?.count, 1);
    assert.equal(byOutcome.failed?.sum, 2);
    // One job runs at a time and is claimed when the one before ends: due 3 s ago, then 5, 7, 9.
    const [waits] = await points('jobchart.queue.wait.duration', { 'jobchart.task': 'measured' });
    const wait = waits?.value as Histogram | undefined;
    assert.equal(wait?.count, 4);
    assert.equal(wait?.sum, 3 + 5 + 7 + 9);
    const jobs = await points('jobchart.jobs', {});
    const succeededNow = jobs.filter((p) => p.attributes['jobchart.job.state'] === 'succeeded');
    assert.ok(succeededNow.length > 0, 'the gauge observes jobs per state');
    await worker.stop();
    await producer.stop();
  });
});

describe('without @opentelemetry/api', () => {
  it('works when the package cannot be imported (a child process whose loader refuses it)', async () => {
    const here = fileURLToPath(new URL('.', import.meta.url));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', `${here}support/no-otel-register.js`, `${here}support/no-otel-child.js`],
      {
        env: { ...process.env, DATABASE_URL: databaseUrl(), SCHEMA: freshSchema('nootel') },
        timeout: 60_000,
      },
    );
    const report = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    assert.deepEqual(report, {
      importFailed: 'ERR_MODULE_NOT_FOUND',
      loaded: null,
      succeeded: 3,
      traceContexts: [null, null, null],
      transitionsCounted: true,
    });
  });

  it('loadOpenTelemetry resolves null for a missing module and rethrows any other failure', async () => {
    const missing = Object.assign(new Error('Cannot find package'), { code: 'ERR_MODULE_NOT_FOUND' });
    assert.equal(await loadOpenTelemetry(() => Promise.reject(missing)), null);
    assert.equal(await loadOpenTelemetry(() => Promise.resolve({ something: 'else' })), null);
    await assert.rejects(
      loadOpenTelemetry(() => Promise.reject(new SyntaxError('broken'))),
      SyntaxError,
    );
    const api = await loadOpenTelemetry();
    assert.equal(api?.trace, trace);
  });
});
