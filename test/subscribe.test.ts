import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RuntimeStateError, SimulatedClock, type TransitionEvent, ValidationError } from '../src/index.js';
import { freshSchema, nextEvent, testRuntime } from './support/helpers.js';

const transitionEvents = ['job:transition', 'job:not_started', 'job:running', 'job:succeeded', 'job:failed'];

function listening(emitter: { listenerCount(name: string): number }): number {
  return transitionEvents.reduce((sum, name) => sum + emitter.listenerCount(name), 0);
}

describe('runtime.subscribe', () => {
  it('yields only the transitions of the given task into the given states, and stops listening on break', async () => {
    const clock = new SimulatedClock();
    const schema = freshSchema('subscribe');
    const worker = testRuntime({
      schema,
      clock,
      pollIntervalMs: 60_000,
      tasks: {
        alpha: {
          handler: async (payload: { ok: boolean }) => {
            if (!payload.ok) throw new Error('alpha refused');
            return 'alpha done';
          },
          maxAttempts: 1,
        },
        beta: async () => 'beta done',
      },
    });
    await worker.start();
    assert.equal(listening(worker.events), 0);

    const seen: TransitionEvent[] = [];
    const collected = (async () => {
      for await (const event of worker.subscribe({ task: 'alpha', states: ['succeeded', 'failed'] })) {
        seen.push(event);
        if (seen.length === 2) break;
      }
    })();
    assert.equal(worker.events.listenerCount('job:succeeded'), 1, 'listening while iterated');
    assert.equal(worker.events.listenerCount('job:transition'), 0, 'only the asked states are listened to');

    // A beta job finishes first: the subscription sees it and drops it.
    const beta = await worker.enqueue('beta', {});
    await nextEvent<TransitionEvent>(worker.events, 'job:succeeded', (e) => e.job.id === beta.id);
    const good = await worker.enqueue('alpha', { ok: true });
    const bad = await worker.enqueue('alpha', { ok: false });
    await collected;

    assert.deepEqual(seen.map((e) => e.job.task).sort(), ['alpha', 'alpha']);
    const byId = new Map(seen.map((e) => [e.job.id, e]));
    assert.equal(byId.get(good.id)?.to, 'succeeded');
    assert.equal(byId.get(good.id)?.from, 'running');
    assert.equal(byId.get(good.id)?.job.result, 'alpha done');
    assert.equal(byId.get(bad.id)?.to, 'failed');
    assert.match(byId.get(bad.id)?.job.lastError ?? '', /alpha refused/);
    assert.equal(listening(worker.events), 0, 'break removed the listener');
    await worker.stop();
  });

  it('attaches on the first next(), buffers between steps, and detaches on return()', async () => {
    const schema = freshSchema('subbuf');
    const producer = testRuntime({ schema });
    await producer.start();
    const subscription = producer.subscribe({ states: ['not_started'] });
    assert.equal(listening(producer.events), 0, 'nothing is attached before iterating');

    const first = subscription.next();
    assert.equal(producer.events.listenerCount('job:not_started'), 1);
    const jobs = await producer.enqueueMany([
      { task: 'one', payload: 1 },
      { task: 'two', payload: 2 },
      { task: 'three', payload: 3 },
    ]);
    const yielded = [await first, await subscription.next(), await subscription.next()];
    assert.deepEqual(
      yielded.map((r) => (r.done ? null : r.value.job.id)),
      jobs.map((j) => j.id),
      'events that arrived between next() calls were buffered in order',
    );
    assert.equal(yielded[0]?.done ? null : yielded[0]?.value.event, 'ENQUEUE');

    const pending = subscription.next();
    assert.deepEqual(await subscription.return(), { value: undefined, done: true });
    assert.deepEqual(await pending, { value: undefined, done: true }, 'a pending next() ends with return()');
    assert.equal(listening(producer.events), 0, 'return() removed the listener');
    await producer.stop();
  });

  it('ends when its signal aborts or the runtime stops', async () => {
    const schema = freshSchema('subend');
    const producer = testRuntime({ schema });
    await producer.start();

    const controller = new AbortController();
    const aborted = producer.subscribe({ task: ['one', 'two'], signal: controller.signal });
    const waiting = aborted.next();
    assert.equal(producer.events.listenerCount('job:transition'), 1);
    await producer.enqueue('one', {});
    await producer.enqueue('other', {});
    controller.abort();
    const firstAborted = await waiting;
    assert.equal(firstAborted.done ? null : firstAborted.value.job.task, 'one');
    assert.deepEqual(await aborted.next(), { value: undefined, done: true });
    assert.equal(producer.events.listenerCount('job:transition'), 0, 'abort removed the listener');

    const untilStop = producer.subscribe();
    const pending = untilStop.next();
    assert.equal(producer.events.listenerCount('job:transition'), 1);
    await producer.stop();
    assert.deepEqual(await pending, { value: undefined, done: true });
    assert.equal(listening(producer.events), 0, 'stop() ended the subscription');
    assert.throws(() => producer.subscribe(), RuntimeStateError, 'refused once stopped');
  });

  it('rejects filters that could never match', () => {
    const producer = testRuntime({ schema: freshSchema('subbad') });
    assert.throws(() => producer.subscribe({ states: ['succeed' as never] }), ValidationError);
    assert.throws(() => producer.subscribe({ states: [] }), ValidationError);
    assert.throws(() => producer.subscribe({ task: '' }), ValidationError);
    return producer.stop();
  });
});
