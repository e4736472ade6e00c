import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobEventType, JobState } from '../machines/job.js';
import { errorText } from '../src/core/error-text.js';
import { sourcesOf } from '../src/core/transitions.js';
import {
  cancel,
  fail,
  InvalidTransitionError,
  type Job,
  type Runtime,
  SchemaNotMigratedError,
} from '../src/index.js';
import { freshSchema, testRuntime, withPool } from './support/helpers.js';

// A job's lastError is one line (the error's name and the first line of its message), so that
// `jobchart get` and a job:failed listener read the failure, not a page of frames; the stack is kept
// with the attempt it belongs to, in errors[].stack.

// finish enqueues a job of `task` and waits for it to finish.
async function finish(runtime: Runtime, task: string): Promise<Job> {
  const job = await runtime.enqueue(task, {});
  return runtime.waitFor(job.id, { timeoutMs: 30_000 });
}

describe('errorText', () => {
  it("keeps an Error's name and first line as its message, and its stack apart", () => {
    const error = new TypeError('first line\nsecond line');
    const text = errorText(error);
    assert.equal(text.message, 'TypeError: first line');
    assert.equal(text.stack, error.stack);
    assert.equal(errorText(new Error('')).message, 'Error');
    assert.equal(errorText(new Error('crlf\r\nnext')).message, 'Error: crlf');
  });

  it('keeps a thrown value without a stack whole only when its first line left something out', () => {
    assert.deepEqual(errorText('one line'), { message: 'one line', stack: null });
    assert.deepEqual(errorText('a\nb'), { message: 'a', stack: 'a\nb' });
    assert.deepEqual(errorText({ code: 7 }), { message: '{"code":7}', stack: null });
    const stackless = new RangeError('x\ny');
    stackless.stack = undefined;
    assert.deepEqual(errorText(stackless), { message: 'RangeError: x', stack: 'RangeError: x\ny' });
  });

  it('makes both parts storable', () => {
    const text = errorText(new Error('bad \ud800 and \u0000nul'));
    assert.equal(text.message, 'Error: bad \ufffd and nul');
    assert.ok(!(text.stack ?? '').includes('\u0000'));
  });
});

describe('lastError and errors[].stack on a real database', () => {
  it('stores the name and first line as lastError, and each attempt with its stack', async () => {
    const schema = freshSchema('errstack');
    const runtime = testRuntime({
      schema,
      tasks: {
        reads: {
          handler: (payload: { missing: { x: number } }) => payload.missing.x,
          maxAttempts: 2,
          backoff: { type: 'fixed', delayMs: 0 },
        },
        lines: { handler: () => Promise.reject(new Error('what broke\nwhy it broke')), maxAttempts: 1 },
        throwsText: {
          handler: () => {
            throw 'text thrown\nover two lines';
          },
          maxAttempts: 1,
        },
        fails: () => fail(new SyntaxError('corrupt export\nat byte 12')),
        cancels: () => cancel('not needed'),
        works: () => ({ done: true }),
      },
    });
    try {
      await runtime.start();
      const reads = await runtime.enqueue('reads', {});
      const read = await runtime.waitFor(reads.id, { timeoutMs: 30_000 });
      const expected = "TypeError: Cannot read properties of undefined (reading 'x')";
      assert.equal(read.state, 'failed');
      assert.equal(read.lastError, expected, 'no stack in lastError');
      assert.deepEqual(
        read.errors.map((e) => [e.attempt, e.message]),
        [
          [1, expected],
          [2, expected],
        ],
      );
      for (const entry of read.errors) {
        assert.match(entry.stack ?? '', /^TypeError: Cannot read properties of undefined[^\n]*\n {4}at /);
      }

      const lines = await finish(runtime, 'lines');
      assert.equal(lines.lastError, 'Error: what broke');
      assert.match(lines.errors[0]?.stack ?? '', /^Error: what broke\nwhy it broke\n {4}at /);

      const text = await finish(runtime, 'throwsText');
      assert.equal(text.lastError, 'text thrown');
      assert.equal(text.errors[0]?.stack, 'text thrown\nover two lines');

      const failed = await finish(runtime, 'fails');
      assert.equal(failed.state, 'failed');
      assert.equal(failed.lastError, 'SyntaxError: corrupt export', 'fail(error) is stored as a throw is');
      assert.match(failed.errors[0]?.stack ?? '', /^SyntaxError: corrupt export\nat byte 12\n {4}at /);

      const cancelled = await finish(runtime, 'cancels');
      assert.equal(cancelled.lastError, 'not needed');
      const works = await finish(runtime, 'works');
      assert.deepEqual(works.errors, []);

      // The stored JSON: an entry without a stack has no key for it (not a null), and the one with
      // a stack carries exactly the four keys.
      const stored = await withPool((pool) =>
        pool.query<{ id: string; keys: string[] }>(
          `SELECT id::text, array_agg(k ORDER BY k) AS keys
             FROM "${schema}".jobs, jsonb_array_elements(errors) AS e, jsonb_object_keys(e) AS k
            WHERE id = ANY ($1::bigint[]) GROUP BY id`,
          [[cancelled.id, lines.id]],
        ),
      );
      const keys = new Map(stored.rows.map((row) => [row.id, row.keys]));
      assert.deepEqual(keys.get(cancelled.id), ['at', 'attempt', 'message']);
      assert.deepEqual(keys.get(lines.id), ['at', 'attempt', 'message', 'stack']);
    } finally {
      await runtime.stop();
    }
  });
});

describe('refused admin actions in plain words', () => {
  it('names the states the machine accepts the event from, and keeps its state and event as fields', async () => {
    const schema = freshSchema('refusal');
    const runtime = testRuntime({ schema, tasks: { works: () => 'ok' } });
    try {
      await runtime.start();
      const done = await finish(runtime, 'works');
      const refused = (promise: Promise<unknown>, state: JobState, event: JobEventType, words: RegExp) =>
        assert.rejects(promise, (error: unknown) => {
          assert.ok(error instanceof InvalidTransitionError);
          assert.equal(error.code, 'INVALID_TRANSITION');
          assert.equal(error.jobId, done.id);
          assert.equal(error.state, state);
          assert.equal(error.event, event);
          assert.match(error.message, words);
          return true;
        });
      await refused(
        runtime.retry(done.id),
        'succeeded',
        'RESTART',
        new RegExp(
          `^job ${done.id} has succeeded: only a failed, cancelled or expired job can be retried \\(the machine refuses RESTART in succeeded\\)$`,
        ),
      );
      await refused(
        runtime.cancel(done.id),
        'succeeded',
        'CANCEL',
        /has succeeded: only a not_started, running, retry or interrupted job can be cancelled \(the machine refuses CANCEL in succeeded\)$/,
      );
      await refused(
        runtime.reschedule(done.id, new Date()),
        'succeeded',
        'RESCHEDULE',
        /only a not_started, retry or interrupted job can be rescheduled/,
      );
    } finally {
      await runtime.stop();
    }
  });

  it('derives the allowed states from the machine, and says "cannot" when the list would be long', () => {
    assert.deepEqual(sourcesOf('RESTART'), ['failed', 'cancelled', 'expired']);
    const remove = new InvalidTransitionError('7', 'running', 'REMOVE');
    assert.equal(
      remove.message,
      'job 7 is running: a running job cannot be removed (the machine refuses REMOVE in running)',
    );
    // The job's own state accepts the event: a guard refused it, and the message does not pretend otherwise.
    const guarded = new InvalidTransitionError('7', 'running', 'RETRY');
    assert.match(
      guarded.message,
      /^job 7 is running: it cannot be retried after a failure in its situation now/,
    );
    const raced = new InvalidTransitionError('7', 'removed', 'RESTART', 'it kept changing for 5 tries');
    assert.match(raced.message, /\(the machine refuses RESTART in removed; it kept changing for 5 tries\)$/);
  });
});

describe('an unmigrated schema', () => {
  it('names both fixes, and keeps the code and the versions as fields', async () => {
    const schema = freshSchema('unmigrated');
    const runtime = testRuntime({ schema });
    try {
      await assert.rejects(runtime.start({ migrate: false }), (error: unknown) => {
        assert.ok(error instanceof SchemaNotMigratedError);
        assert.equal(error.code, 'SCHEMA_NOT_MIGRATED');
        assert.equal(error.schema, schema);
        assert.equal(error.version, 0);
        assert.ok(error.expected > 0);
        assert.match(error.message, /runtime\.start\(\)/);
        assert.match(error.message, new RegExp(`\`jobchart migrate --schema ${schema}\``));
        return true;
      });
    } finally {
      await runtime.stop().catch(() => {});
    }
  });
});
