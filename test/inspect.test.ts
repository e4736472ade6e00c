import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { createWebSocketInspector } from '@statelyai/inspect';
import { WebSocketServer } from 'ws';
import { type AnyActorRef, createActor, type InspectionEvent } from 'xstate';
import { jobMachine } from '../machines/job.js';
import { fail } from '../src/index.js';
import { countEvents, freshSchema, testRuntime } from './support/helpers.js';

describe('inspection', () => {
  it('sees every running job as an actor of one system, with the events that moved it', async () => {
    const schema = freshSchema('inspect');
    const seen: InspectionEvent[] = [];
    const runtime = testRuntime({
      schema,
      inspect: (event) => seen.push(event),
      tasks: { ok: () => 'done', refuse: () => fail('not today') },
    });
    await runtime.start();
    const ended = countEvents(runtime.events, 'job:transition', 2, (e: { to: string }) =>
      ['succeeded', 'failed'].includes(e.to),
    );
    const [ok, refused] = await runtime.enqueueMany([
      { task: 'ok', payload: {} },
      { task: 'refuse', payload: {} },
    ]);
    await ended;
    await runtime.stop();

    const refOf = (e: InspectionEvent) => e.actorRef as AnyActorRef;
    const actorIds = seen.filter((e) => e.type === '@xstate.actor').map((e) => refOf(e).id);
    assert.ok(actorIds.includes(`job:${ok?.id}`) && actorIds.includes(`job:${refused?.id}`), `${actorIds}`);
    const systems = new Set(seen.map((e) => refOf(e).system));
    assert.equal(systems.size, 1, 'the supervisor and every job actor share one system');

    for (const [job, event, state] of [
      [ok, 'SUCCEED', 'succeeded'],
      [refused, 'FAIL', 'failed'],
    ] as const) {
      const mine = seen.filter((e) => refOf(e).id === `job:${job?.id}`);
      const events = mine.flatMap((e) =>
        e.type === '@xstate.event' && e.event.type !== 'xstate.init' ? [e.event.type] : [],
      );
      // It lives from the claim: the job machine itself (what an inspector draws), CLAIM first.
      assert.equal(events[0], 'CLAIM', `${job?.id} received ${events}`);
      assert.ok(events.includes(event), `${job?.id} received ${events}`);
      const ref = refOf(mine[0] as InspectionEvent);
      assert.equal(
        (ref as unknown as { logic: unknown }).logic,
        jobMachine,
        'the actor runs the job machine, definition and all',
      );
      assert.equal(ref.getSnapshot().status, 'stopped', 'its last snapshot is not left active');
      const last = mine.filter((e) => e.type === '@xstate.snapshot').at(-1);
      assert.ok(last?.type === '@xstate.snapshot');
      const snapshot = last.snapshot as unknown as {
        value: string;
        context: { jobId: string; attempts: number };
      };
      assert.equal(snapshot.value, state);
      assert.deepEqual(snapshot.context, {
        jobId: job?.id,
        attempts: 1,
        maxAttempts: 25,
        interruptions: 0,
        maxInterruptions: 5,
      });
    }
  });
});

describe("@statelyai/inspect's WebSocket inspector", () => {
  it('receives a job actor as it receives a machine actor: with the job machine’s definition', {
    timeout: 30_000,
  }, async () => {
    const received: {
      type: string;
      sessionId?: string;
      definition?: string;
      snapshot?: { value?: unknown };
    }[] = [];
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(server, 'listening');
    server.on('connection', (socket) => {
      socket.on('message', (data) => received.push(JSON.parse(String(data))));
    });
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const inspector = createWebSocketInspector({ url });
    const schema = freshSchema('wsinspect');
    const runtime = testRuntime({ schema, inspect: inspector.inspect, tasks: { ok: () => 'done' } });
    try {
      await runtime.start();
      const done = countEvents(runtime.events, 'job:succeeded', 1);
      const job = await runtime.enqueue('ok', {});
      await done;
      // The same inspector package, given a plain machine actor of the job machine, for comparison.
      const plain = createActor(jobMachine, {
        inspect: inspector.inspect,
        input: { jobId: 'x', maxAttempts: 1 },
      });
      plain.start();
      plain.stop();
      // Messages name an actor by its id (`job:<id>`), or by its machine's id when it has none.
      const jobActor = await waitForMessage(
        server,
        received,
        (m) => m.type === '@xstate.actor' && (m as { name?: string }).name === `job:${job.id}`,
      );
      const plainActor = await waitForMessage(
        server,
        received,
        (m) => m.type === '@xstate.actor' && m.sessionId === plain.sessionId,
      );
      const jobSnapshots = await waitForMessage(
        server,
        received,
        (m) =>
          m.type === '@xstate.snapshot' &&
          m.sessionId === jobActor.sessionId &&
          m.snapshot?.value === 'succeeded',
      );
      assert.ok(jobSnapshots, `job ${job.id} reached succeeded in the inspector`);
      assert.ok(jobActor.definition, 'the job actor carries a definition');
      assert.equal(jobActor.definition, plainActor.definition, 'the same definition a machine actor sends');
      assert.equal(JSON.parse(jobActor.definition as string).id, 'job');
    } finally {
      await runtime.stop();
      inspector.stop();
      server.close();
    }
  });
});

// waitForMessage resolves with the first message matching `match`, received already or later.
function waitForMessage<T extends { type: string }>(
  server: WebSocketServer,
  received: T[],
  match: (message: T) => boolean,
): Promise<T> {
  const seen = received.find(match);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const onMessage = (data: unknown) => {
      const message = JSON.parse(String(data)) as T;
      if (match(message)) resolve(message);
    };
    for (const client of server.clients) client.on('message', onMessage);
    server.on('connection', (socket) => socket.on('message', onMessage));
  });
}
