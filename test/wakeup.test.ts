import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type PolledEvent, SimulatedClock, type TransitionEvent } from '../src/index.js';
import { freshSchema, nextEvent, testRuntime, withPool } from './support/helpers.js';

describe('wake-ups', () => {
  it('a notification starts a job in an idle runtime without waiting for the poll', async () => {
    // The simulated clock never moves here, so the poll timer can never fire: only NOTIFY can wake it.
    const clock = new SimulatedClock();
    const schema = freshSchema('notify');
    const worker = testRuntime({
      schema,
      clock,
      pollIntervalMs: 60_000,
      tasks: { ping: async () => 'pong' },
    });
    let connected = 0;
    worker.events.on('runtime:connected', () => connected++);
    await worker.start();
    const connectedByStart = connected;
    const producer = testRuntime({ schema, clock });
    await producer.start();
    const job = await producer.enqueue('ping', {});
    const done = await nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === job.id);
    assert.equal(done.job.result, 'pong');
    await Promise.all([worker.stop(), producer.stop()]);
    assert.equal(connectedByStart, 1, 'the first connect is announced once');
  });

  it('the timer alone finds due jobs when notifications are off', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('timer');
    let runs = 0;
    const worker = testRuntime({
      schema,
      clock,
      listen: false,
      pollIntervalMs: 5_000,
      tasks: {
        tick: async () => {
          runs++;
        },
      },
    });
    await worker.start();
    const job = await worker.enqueue('tick', {});
    // The start-up claim ran before the insert; with no notification the job waits for the poll.
    assert.equal(runs, 0);
    const done = nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === job.id);
    clock.advance(5_000);
    await done;
    assert.equal(runs, 1);
    await worker.stop();
  });

  it('a job scheduled for later starts when the clock reaches its run_at', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('later');
    const worker = testRuntime({
      schema,
      clock,
      pollIntervalMs: 1_000,
      tasks: { later: async () => undefined },
    });
    await worker.start();
    const runAt = new Date(clock.now().getTime() + 60_000);
    const job = await worker.enqueue('later', {}, { runAt });
    let started: Date | null = null;
    worker.events.on('job:running', (e) => {
      if (e.job.id === job.id) started = clock.now();
    });
    const done = nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === job.id);
    const almost = clock.now().getTime() + 59_000;
    const polledAlmost = nextEvent<PolledEvent>(
      worker.events,
      'runtime:polled',
      (e) => e.at.getTime() >= almost,
    );
    clock.advance(59_000);
    assert.equal((await polledAlmost).claimed, 0);
    assert.equal(started, null, 'not started before its run_at');
    clock.advance(1_000);
    await done;
    await worker.stop();
  });

  it('reconnects a killed listener and polls once after reconnecting', async () => {
    // The simulated clock never moves and nothing is inserted, so after the kill only the catch-up poll
    // that follows a reconnect can produce a claim round.
    const clock = new SimulatedClock();
    const schema = freshSchema('relisten');
    const worker = testRuntime({
      schema,
      clock,
      pollIntervalMs: 60_000,
      tasks: { later: async () => 'found' },
    });
    await worker.start();
    const disconnected = nextEvent(
      worker.events,
      'runtime:error',
      (e: { during: string }) => e.during === 'listen',
    );
    const killed = await withPool((pool) =>
      pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1', [
        `LISTEN "${schema}:jobs"`,
      ]),
    );
    assert.equal(killed.rowCount, 1, 'the listener connection was found and killed');
    await disconnected;
    await nextEvent(worker.events, 'runtime:connected');
    assert.equal(worker.health().listening, true);
    await nextEvent(worker.events, 'runtime:polled');
    const producer = testRuntime({ schema, clock });
    const job = await producer.enqueue('later', {});
    const done = await nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === job.id);
    assert.equal(done.job.result, 'found', 'notifications work again');
    await Promise.all([worker.stop(), producer.stop()]);
    // Nothing keeps listening once the runtime has stopped: no connection left behind by the one
    // that was killed, nor by the one that replaced it.
    const listening = await withPool((pool) =>
      pool.query('SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = $2', [
        `LISTEN "${schema}:jobs"`,
        'idle',
      ]),
    );
    assert.equal(listening.rowCount, 0, 'no LISTEN connection remains');
  });
});
