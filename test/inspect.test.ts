import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnyActorRef, InspectionEvent } from 'xstate';
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
