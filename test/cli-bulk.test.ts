import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { databaseUrl, freshSchema, testRuntime } from './support/helpers.js';

const CLI = new URL('../src/cli.js', import.meta.url).pathname;

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, DATABASE_URL: databaseUrl() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

// listed runs `jobchart jobs` with `flags` and returns the ids it printed.
async function listed(schema: string, flags: string[]): Promise<string[]> {
  const result = await cli(['jobs', '--schema', schema, ...flags]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t')[0] as string);
}

describe('the command line with filters', () => {
  it('lists by every filter flag and runs the bulk commands, printing their counts', async () => {
    const schema = freshSchema('clibulk');
    const producer = testRuntime({ schema });
    await producer.start();
    try {
      const a = await producer.enqueue('bill', {}, { key: 'a%1', tags: ['eu', 'vip'] });
      const b = await producer.enqueue('bill', {}, { key: 'ab2', tags: ['eu'] });
      const c = await producer.enqueue('mail', {}, { tags: ['vip'] });
      await producer.cancel(a.id);
      assert.deepEqual(await listed(schema, ['--key-prefix', 'a%']), [a.id]);
      assert.deepEqual(await listed(schema, ['--tag', 'eu', '--tag', 'vip']), [a.id]);
      assert.deepEqual(await listed(schema, ['--finished-after', '2000-01-01']), [a.id]);

      const retried = await cli(['retry', '--schema', schema, '--task', 'bill', '--batch-size', '1']);
      assert.equal(retried.code, 0, retried.stderr);
      assert.deepEqual(JSON.parse(retried.stdout), {
        changed: 1,
        refused: 1,
        signalled: 0,
        byState: {
          cancelled: { changed: 1, refused: 0, signalled: 0 },
          not_started: { changed: 0, refused: 1, signalled: 0 },
        },
      });
      assert.equal((await producer.getJob(a.id))?.state, 'not_started');

      const parked = await cli(['reschedule', '--schema', schema, '--tag', 'eu', '--park']);
      assert.equal(parked.code, 0, parked.stderr);
      assert.equal(JSON.parse(parked.stdout).changed, 2);
      assert.equal((await producer.getJob(b.id))?.runAt, null);
      const moved = await cli(['reschedule', b.id, '--schema', schema, '--run-at', '2030-01-01T00:00:00Z']);
      assert.equal(moved.code, 0, moved.stderr);
      assert.equal(JSON.parse(moved.stdout).runAt, '2030-01-01T00:00:00.000Z');

      const cancelled = await cli([
        'cancel',
        '--schema',
        schema,
        '--tag',
        'vip',
        '--reason',
        'campaign over',
      ]);
      assert.equal(cancelled.code, 0, cancelled.stderr);
      assert.equal(JSON.parse(cancelled.stdout).changed, 2);
      assert.equal((await producer.getJob(c.id))?.lastError, 'campaign over');

      const removed = await cli(['remove', '--schema', schema, '--all']);
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal(JSON.parse(removed.stdout).changed, 3);
      assert.deepEqual(await listed(schema, []), []);

      // A filter the runtime refuses is a refusal (exit 1, one line), not a usage mistake.
      const refused = await cli(['remove', '--schema', schema, '--tag', 'not ok']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^tags\[0\]: expected a tag: /);
    } finally {
      await producer.stop();
    }
  });

  it('refuses filter and bulk flags where they mean nothing, before touching the database', async () => {
    const mistakes: [string[], RegExp][] = [
      [['retry'], /^retry: expected a job id, or filter flags \(--state, --task, --tag, …\), or --all\n/],
      [['retry', '5', '--task', 'x'], /^retry: --task filters jobs; give it without a job id/],
      [['get', '5', '--tag', 'a'], /^get: --tag applies to jobs, retry, cancel, remove and reschedule\n/],
      [['jobs', '--created-before', 'yesterday'], /^jobs: --created-before expects an ISO time/],
      [['reschedule', '--task', 'x'], /^reschedule: expected either --run-at <ISO time> or --park\n/],
      [
        ['remove', '--all', '--batch-size', '0'],
        /^remove: --batch-size expects a positive integer, received 0/,
      ],
      [
        ['remove', '5', '--all'],
        /^remove: --all and --batch-size apply to retry, cancel, remove and reschedule/,
      ],
      [['retry', '--task', 'x', '--stack'], /^retry: --stack applies to the commands that print a job\n/],
    ];
    // No --schema and no database is needed: each is refused before the runtime starts.
    for (const [args, message] of mistakes) {
      const result = await cli([...args, '--database-url', 'postgres://postgres@127.0.0.1:1/nowhere']);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message, args.join(' '));
      assert.match(result.stderr, /usage: jobchart/, args.join(' '));
    }
  });
});
