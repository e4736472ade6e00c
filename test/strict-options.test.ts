import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnyActorRef, InspectionEvent } from 'xstate';
import { assertKnownKeys, nearestName, optionNames } from '../src/core/known-keys.js';
import { type RuntimeOptions, SimulatedClock, UnknownOptionError, ValidationError } from '../src/index.js';
import { drainDueJobs, runTask } from '../src/testing/index.js';
import { databaseUrl, freshSchema, quietLogger, testRuntime } from './support/helpers.js';

// unknownOption matches the error a misspelled key must raise: an UnknownOptionError whose field is
// the key's full path and whose suggestion is the name it most likely meant.
function unknownOption(field: string, suggestion: string | null) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof UnknownOptionError, `expected an UnknownOptionError, got ${error}`);
    assert.equal(error.field, field);
    assert.equal(error.suggestion, suggestion);
    if (suggestion) assert.equal(error.message, `unknown option ${field}: did you mean ${suggestion}?`);
    return true;
  };
}

describe('nearestName and assertKnownKeys', () => {
  const known = ['maxRunningJobs', 'prefetch', 'pollIntervalMs'];

  it('suggests the nearest known name, ignoring case', () => {
    assert.equal(nearestName('maxRunningJob', known), 'maxRunningJobs');
    assert.equal(nearestName('prefecth', known), 'prefetch');
    assert.equal(nearestName('MAXRUNNINGJOBS', known), 'maxRunningJobs');
    assert.equal(nearestName('PollIntervalMS', known), 'pollIntervalMs');
  });

  it('suggests nothing when no known name is close', () => {
    assert.equal(nearestName('colour', known), null);
    assert.equal(nearestName('x', known), null);
    assert.equal(nearestName('anything', []), null);
  });

  it('passes known keys and refuses the first unknown one, with its path', () => {
    assert.doesNotThrow(() => assertKnownKeys({ prefetch: 1, maxRunningJobs: 2 }, known, 'opts'));
    assert.doesNotThrow(() => assertKnownKeys({}, known, 'opts'));
    assert.throws(
      () => assertKnownKeys({ prefetch: 1, prefetsh: 2 }, known, 'opts'),
      unknownOption('opts.prefetsh', 'prefetch'),
    );
    assert.throws(
      () => assertKnownKeys({ maxRunningJob: 5 }, known, ''),
      unknownOption('maxRunningJob', 'maxRunningJobs'),
    );
    assert.throws(
      () => assertKnownKeys({ colour: 'red' }, known, ''),
      (error: unknown) => {
        unknownOption('colour', null)(error);
        assert.match((error as Error).message, /expected one of maxRunningJobs, prefetch, pollIntervalMs/);
        return true;
      },
    );
  });

  it('optionNames lists every key of its type, and the compiler holds the list to the type', () => {
    interface Probe {
      a?: number;
      b: string;
    }
    assert.deepEqual(optionNames<Probe>({ a: true, b: true }), ['a', 'b']);
    // @ts-expect-error: a key of the type left out does not compile.
    optionNames<Probe>({ a: true });
    // @ts-expect-error: a key the type lacks does not compile.
    optionNames<Probe>({ a: true, b: true, c: true });
  });
});

describe('createRuntime options', () => {
  it('refuses a misspelled top-level option, naming it and the option it meant', () => {
    const base = { connectionString: databaseUrl(), logger: quietLogger };
    assert.throws(
      () => testRuntime({ schema: 'jobchart', maxRunningJob: 5 } as RuntimeOptions & { schema: string }),
      unknownOption('maxRunningJob', 'maxRunningJobs'),
    );
    for (const [options, field, suggestion] of [
      [{ ...base, pollIntervalMS: 10 }, 'pollIntervalMS', 'pollIntervalMs'],
      [{ ...base, queues: { emails: { concurency: 2 } } }, 'queues.emails.concurency', 'concurrency'],
      [{ ...base, queues: { ledger: { serial: true, seriall: true } } }, 'queues.ledger.seriall', 'serial'],
      [
        { ...base, rateLimits: { smtp: { capacity: 5, refilPerSecond: 1 } } },
        'rateLimits.smtp.refilPerSecond',
        'refillPerSecond',
      ],
      [{ ...base, wibble: true }, 'wibble', null],
    ] as const) {
      assert.throws(
        () => testRuntime({ schema: 'jobchart', ...(options as object) }),
        unknownOption(field, suggestion),
      );
    }
  });

  it('accepts every known option, and inspect as a function or an observer', async () => {
    const options: RuntimeOptions = {
      connectionString: databaseUrl(),
      tasks: { mail: () => 'sent' },
      externalTasks: ['elsewhere'],
      maxRunningJobs: 3,
      prefetch: 0,
      queues: { emails: { concurrency: 2 }, ledger: { serial: true } },
      rateLimits: { smtp: { capacity: 5, refillPerSecond: 1 } },
      schema: freshSchema('strictall'),
      heartbeatIntervalMs: 1000,
      consumerTimeoutMs: 10_000,
      maxInterruptions: 3,
      shutdownTimeoutMs: 1000,
      logger: quietLogger,
      clock: new SimulatedClock(),
      onException: () => ({ type: 'retry', delayMs: 1000 }) as never,
      pollIntervalMs: 500,
      listen: false,
      inspect: { next: () => undefined, error: () => undefined, complete: () => undefined },
      name: 'strict',
    };
    for (const inspect of [options.inspect, () => undefined, { next: () => undefined }, undefined]) {
      await testRuntime({ ...options, schema: options.schema as string, inspect }).stop();
    }
  });

  it('refuses an inspect that is neither a function nor an observer with next', () => {
    for (const inspect of [
      { nxt: () => undefined },
      { next: 5 },
      { next: () => undefined, error: 'no' },
      7,
    ]) {
      assert.throws(
        () => testRuntime({ schema: 'jobchart', inspect: inspect as never }),
        (error: unknown) =>
          error instanceof ValidationError &&
          !(error instanceof UnknownOptionError) &&
          error.field === 'inspect',
      );
    }
  });
});

describe('runtime calls', () => {
  it('start, schedules.upsert, listJobs, waitFor and subscribe refuse unknown keys and write nothing', async () => {
    const schema = freshSchema('strictcalls');
    const runtime = testRuntime({ schema, tasks: { mail: () => 'sent' } });
    await assert.rejects(runtime.start({ migrat: false } as never), unknownOption('start.migrat', 'migrate'));
    assert.equal(runtime.phase, 'created', 'a refused start leaves the runtime new');
    await runtime.start({ migrate: true });
    try {
      await assert.rejects(
        runtime.schedules.upsert('nightly', { cronn: '0 3 * * *', task: 'mail' } as never),
        unknownOption('schedules.upsert.cronn', 'cron'),
      );
      await assert.rejects(
        runtime.schedules.upsert('nightly', { cron: '0 3 * * *', task: 'mail', timeZone: 'UTC' } as never),
        unknownOption('schedules.upsert.timeZone', 'timezone'),
      );
      assert.deepEqual(await runtime.schedules.list(), [], 'a refused upsert writes no schedule');

      await assert.rejects(
        runtime.listJobs({ stat: 'failed' } as never),
        unknownOption('listJobs.stat', 'state'),
      );
      await assert.rejects(runtime.listJobs({ zzzzzz: 1 } as never), unknownOption('listJobs.zzzzzz', null));
      await assert.rejects(
        runtime.enqueueMany([{ task: 'mail' }], { clinet: null } as never),
        unknownOption('enqueueMany.clinet', 'client'),
      );
      assert.deepEqual((await runtime.listJobs()).jobs, [], 'a refused enqueueMany writes no job');
      const job = await runtime.enqueue('mail', {});
      await assert.rejects(
        runtime.waitFor(job.id, { timeout: 5 } as never),
        unknownOption('waitFor.timeout', 'timeoutMs'),
      );
      assert.throws(
        () => runtime.subscribe({ state: ['failed'] } as never),
        unknownOption('subscribe.state', 'states'),
      );

      // Every known key still passes.
      const controller = new AbortController();
      const subscription = runtime.subscribe({
        task: 'mail',
        states: ['succeeded'],
        signal: controller.signal,
      });
      controller.abort();
      assert.deepEqual(await subscription.next(), { value: undefined, done: true });
      assert.equal((await runtime.waitFor(job.id, { timeoutMs: 15_000 })).state, 'succeeded');
      const page = await runtime.listJobs({
        state: ['succeeded'],
        task: 'mail',
        queue: 'default',
        key: 'none',
        limit: 10,
        cursor: null,
      });
      assert.deepEqual(page, { jobs: [], nextCursor: null });
      assert.equal((await runtime.listJobs({ state: 'succeeded', limit: 10 })).jobs.length, 1);
      const schedule = await runtime.schedules.upsert('nightly', {
        cron: '0 3 * * *',
        task: 'mail',
        payload: { to: 'ops' },
        description: 'nightly mail',
        timezone: 'Europe/Berlin',
        enabled: false,
        overlap: 'queue',
        catchUp: 'none',
        namespace: 'strict',
      });
      assert.equal(schedule.name, 'nightly');
      const every = await runtime.schedules.upsert('often', { everyMs: 60_000, task: 'mail' });
      assert.equal(every.everyMs, 60_000);
    } finally {
      await runtime.stop();
    }
  });

  it('the testing kit: runTask and drainDueJobs refuse unknown keys', async () => {
    await assert.rejects(
      runTask(() => 'ok', {}, { atempt: 2 } as never),
      unknownOption('runTask.atempt', 'attempt'),
    );
    assert.equal((await runTask(() => 'ok', {}, { attempt: 2, jobId: '7', random: 0.5 })).kind, 'succeeded');
    const clock = new SimulatedClock();
    const runtime = testRuntime({ schema: freshSchema('strictkit'), clock });
    await assert.rejects(
      drainDueJobs(runtime, clock, { maxStep: 3 } as never),
      unknownOption('drainDueJobs.maxStep', 'maxSteps'),
    );
    await runtime.stop();
  });

  it('an inspect observer sees the job actors of a running runtime', async () => {
    const seen: InspectionEvent[] = [];
    const runtime = testRuntime({
      schema: freshSchema('strictinspect'),
      tasks: { mail: () => 'sent' },
      inspect: {
        next(event) {
          seen.push(event);
        },
      },
    });
    await runtime.start();
    try {
      const job = await runtime.enqueue('mail', {});
      assert.equal((await runtime.waitFor(job.id, { timeoutMs: 15_000 })).state, 'succeeded');
      const mine = seen.filter((e) => (e.actorRef as AnyActorRef).id === `job:${job.id}`);
      assert.ok(
        mine.some((e) => e.type === '@xstate.actor'),
        'the observer saw the job actor start',
      );
      const events = mine.flatMap((e) => (e.type === '@xstate.event' ? [e.event.type] : []));
      assert.ok(events.includes('SUCCEED'), `the observer saw ${events}`);
    } finally {
      await runtime.stop();
    }
  });
});
