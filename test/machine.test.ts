import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createActor, transition } from 'xstate';
import {
  DEFAULT_MAX_INTERRUPTIONS,
  JOB_STATES,
  type JobEventType,
  type JobState,
  jobMachine,
} from '../machines/job.js';
import { InvalidTransitionError } from '../src/core/errors.js';
import { planTransition, sourcesOf, targetOf, tryTransition } from '../src/core/transitions.js';
import { jobActorLogic } from '../src/dispatch/job-actors.js';

// EXPECTED is the lifecycle written out by hand: every (state, event) pair not listed must be refused.
const WAITING = {
  CLAIM: 'running',
  EXPIRE: 'expired',
  CANCEL: 'cancelled',
  RESCHEDULE: 'not_started',
  REPLACE: 'not_started',
  REMOVE: 'removed',
} as const;
const EXPECTED: Record<JobState, Partial<Record<JobEventType, JobState>>> = {
  not_started: WAITING,
  retry: WAITING,
  interrupted: WAITING,
  running: {
    SUCCEED: 'succeeded',
    RETRY: 'retry',
    FAIL: 'failed',
    INTERRUPT: 'interrupted',
    RELEASE: 'not_started',
    RERUN: 'not_started',
    CANCEL: 'cancelled',
  },
  succeeded: { REMOVE: 'removed' },
  failed: { RESTART: 'not_started', REMOVE: 'removed' },
  cancelled: { RESTART: 'not_started', REMOVE: 'removed' },
  expired: { RESTART: 'not_started', REMOVE: 'removed' },
  removed: {},
};

const EVENTS: JobEventType[] = [
  'CLAIM',
  'SUCCEED',
  'RETRY',
  'FAIL',
  'INTERRUPT',
  'RELEASE',
  'RERUN',
  'CANCEL',
  'EXPIRE',
  'RESCHEDULE',
  'REPLACE',
  'REMOVE',
  'RESTART',
];

describe('job machine', () => {
  for (const state of JOB_STATES) {
    for (const event of EVENTS) {
      const target = EXPECTED[state][event];
      const job = { id: '42', state, attempts: 1, maxAttempts: 3 };
      if (target) {
        it(`${state} --${event}--> ${target}`, () => {
          assert.equal(planTransition(job, { type: event }).to, target);
        });
      } else {
        it(`${state} refuses ${event}`, () => {
          assert.throws(
            () => planTransition(job, { type: event }),
            (error: unknown) =>
              error instanceof InvalidTransitionError &&
              error.jobId === '42' &&
              error.state === state &&
              error.event === event &&
              error.message.includes('job 42') &&
              error.message.includes(state) &&
              error.message.includes(event),
          );
        });
      }
    }
  }

  it('counts attempts: CLAIM spends one, RELEASE and RERUN refund it, RESTART resets', () => {
    assert.equal(
      planTransition({ id: '1', state: 'not_started', attempts: 0, maxAttempts: 3 }, { type: 'CLAIM' })
        .attempts,
      1,
    );
    assert.equal(
      planTransition({ id: '1', state: 'running', attempts: 2, maxAttempts: 3 }, { type: 'RELEASE' })
        .attempts,
      1,
    );
    assert.equal(
      planTransition({ id: '1', state: 'running', attempts: 2, maxAttempts: 3 }, { type: 'RERUN' }).attempts,
      1,
    );
    assert.equal(
      planTransition({ id: '1', state: 'failed', attempts: 3, maxAttempts: 3 }, { type: 'RESTART' }).attempts,
      0,
    );
  });

  it('refuses RETRY once attempts are used up', () => {
    assert.throws(
      () => planTransition({ id: '7', state: 'running', attempts: 3, maxAttempts: 3 }, { type: 'RETRY' }),
      InvalidTransitionError,
    );
  });

  it('remembers exactly what a fresh machine actor decides, for every state, event and attempt count', () => {
    let compared = 0;
    for (const state of JOB_STATES) {
      for (const event of EVENTS) {
        for (let maxAttempts = 1; maxAttempts <= 3; maxAttempts++) {
          for (let attempts = 0; attempts <= maxAttempts; attempts++) {
            const context = {
              jobId: `j${compared}`,
              attempts,
              maxAttempts,
              interruptions: 0,
              maxInterruptions: DEFAULT_MAX_INTERRUPTIONS,
            };
            const machine = createActor(jobMachine, {
              snapshot: jobMachine.resolveState({ value: state, context }),
              input: { jobId: context.jobId, maxAttempts },
            }).start();
            const before = machine.getSnapshot();
            machine.send({ type: event });
            const after = machine.getSnapshot();
            const refused = after === before && !before.can({ type: event });
            const job = { id: context.jobId, state, attempts, maxAttempts };
            // Asked twice: the second answer comes from memory and must equal the first.
            for (const planned of [tryTransition(job, event), tryTransition(job, event)]) {
              if (refused) assert.equal(planned, null, `${state} ${event} ${attempts}/${maxAttempts}`);
              else
                assert.deepEqual(planned, {
                  event,
                  from: state,
                  to: after.value,
                  attempts: after.context.attempts,
                  finished: after.hasTag('finished'),
                });
            }
            // The job actor's logic moves as the machine actor did.
            const actor = createActor(
              jobActorLogic({ ...job, interruptions: 0 }, DEFAULT_MAX_INTERRUPTIONS),
            ).start();
            actor.send({ type: event });
            assert.equal(actor.getSnapshot().value, refused ? state : after.value);
            assert.equal(actor.getSnapshot().context.attempts, refused ? attempts : after.context.attempts);
            compared++;
          }
        }
      }
    }
    assert.equal(compared, JOB_STATES.length * EVENTS.length * 9);
  });

  it('refunds the attempt on INTERRUPT and counts the interruption; fails the job on the last interruption allowed', () => {
    const running = (interruptions: number) =>
      jobMachine.resolveState({
        value: 'running',
        context: { jobId: '9', attempts: 1, maxAttempts: 1, interruptions, maxInterruptions: 3 },
      });
    const [interrupted] = transition(jobMachine, running(1), { type: 'INTERRUPT' });
    assert.equal(interrupted.value, 'interrupted');
    assert.equal(interrupted.context.attempts, 0, 'a job that never ran its handler keeps its attempt');
    assert.equal(interrupted.context.interruptions, 2);
    // The third interruption of three: the machine itself fails the job, counting the interruption.
    const [failed] = transition(jobMachine, running(2), { type: 'INTERRUPT' });
    assert.equal(failed.value, 'failed');
    assert.equal(failed.context.attempts, 1, 'the attempt stays spent');
    assert.equal(failed.context.interruptions, 3);
  });

  it('derives the claim from the machine: claimable states and target', () => {
    assert.deepEqual(sourcesOf('CLAIM'), ['not_started', 'retry', 'interrupted']);
    assert.equal(targetOf('CLAIM'), 'running');
    assert.deepEqual(sourcesOf('RELEASE'), ['running']);
  });
});

describe('the claim in the migrations', () => {
  it('claims from the states the machine claims from, into the states it enters', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const migrations = new URL('../../migrations/', import.meta.url);
    const files = (await readdir(migrations)).filter((file) => file.endsWith('.sql')).sort();
    const sql = (await Promise.all(files.map((file) => readFile(new URL(file, migrations), 'utf8')))).join(
      '\n',
    );
    // A function's definition in force is its last one: later migrations replace earlier ones.
    const definitionOf = (name: string) => {
      const starts = [...sql.matchAll(new RegExp(`CREATE (OR REPLACE )?(FUNCTION|INDEX) ${name}\\b`, 'g'))];
      const start = starts.at(-1)?.index;
      assert.ok(start !== undefined, `${name} is defined`);
      return sql.slice(start);
    };
    const statesIn = (text: string) =>
      [...(/state IN \(([^)]*)\)/.exec(text)?.[1] ?? '').matchAll(/'(\w+)'/g)].map((m) => m[1]);
    for (const name of [
      'jobs_claim_idx',
      'jobs_named_queue_claim_idx',
      'claim_jobs',
      'claim_queue_jobs',
      'claim_serial_job',
      'claim_jobs_json',
      'claim_queue_jobs_json',
      'claim_serial_job_json',
    ]) {
      assert.deepEqual(statesIn(definitionOf(name)), sourcesOf('CLAIM'), name);
    }
    // A claimed job that has expired takes EXPIRE instead, from the same states.
    assert.deepEqual(sourcesOf('EXPIRE'), sourcesOf('CLAIM'));
    for (const name of ['take_jobs', 'take_jobs_json']) {
      assert.match(
        definitionOf(name),
        new RegExp(`THEN '${targetOf('EXPIRE')}' ELSE '${targetOf('CLAIM')}' END`),
        name,
      );
    }
  });
});
