import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { databaseUrl, freshSchema, testRuntime, withPool } from './support/helpers.js';

const CLI = new URL('../src/cli.js', import.meta.url).pathname;
const TASKS = new URL('./fixtures/tasks.js', import.meta.url).pathname;

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

// stderrMatches resolves once `child` has written something matching `pattern` on stderr, and
// rejects if it exits first.
function stderrMatches(child: ChildProcessWithoutNullStreams, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk;
      if (!pattern.test(seen)) return;
      child.stderr.off('data', onData);
      child.off('exit', onExit);
      resolve();
    };
    const onExit = (code: number | null) =>
      reject(new Error(`the worker exited (${code}) before writing ${pattern}:\n${seen}`));
    child.stderr.on('data', onData);
    child.once('exit', onExit);
  });
}

describe('the jobchart command line', () => {
  it('migrates, works a module of tasks until SIGTERM, lists and administers jobs', async () => {
    const schema = freshSchema('cli');
    assert.equal((await cli(['migrate', '--schema', schema])).code, 0);
    const producer = testRuntime({ schema });
    await producer.start({ migrate: false });
    const job = await producer.enqueue('greet', { name: 'Ada' });
    // A producer does not know the task's maxAttempts, so the job carries it.
    const failing = await producer.enqueue('flaky', {}, { maxAttempts: 1 });

    const worker = spawn(
      process.execPath,
      [CLI, 'worker', TASKS, '--schema', schema, '--name', 'cli-worker'],
      {
        env: { ...process.env, DATABASE_URL: databaseUrl() },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const done = await producer.waitFor(job.id, { timeoutMs: 30_000 });
    assert.equal(done.result, 'hello Ada');
    assert.equal(done.lockedBy, null);
    assert.equal((await producer.waitFor(failing.id, { timeoutMs: 30_000 })).state, 'failed');
    worker.kill('SIGTERM');
    const [code] = (await once(worker, 'exit')) as [number | null];
    assert.equal(code, 0, 'a stopped worker exits cleanly');

    const listed = await cli(['jobs', '--schema', schema, '--state', 'failed']);
    assert.equal(listed.code, 0);
    assert.match(listed.stdout, new RegExp(`^${failing.id}\\tfailed\\tflaky`, 'm'));
    assert.doesNotMatch(listed.stdout, /greet/);

    const retried = await cli(['retry', failing.id, '--schema', schema]);
    assert.equal(retried.code, 0);
    assert.equal(JSON.parse(retried.stdout).state, 'not_started');

    const refused = await cli(['retry', job.id, '--schema', schema]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      new RegExp(`job ${job.id}: event RESTART is not allowed in state succeeded`),
    );
    await producer.stop();
  });

  it('explains its usage on a mistake', async () => {
    const unknown = await cli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command frobnicate/);
    assert.match(unknown.stderr, /usage: jobchart/);
    const noModule = await cli(['worker']);
    assert.equal(noModule.code, 2);
    assert.equal((await cli(['help'])).code, 0);
  });

  it('keeps a worker running when every connection of its is cut, and exits 0 only on a signal', async () => {
    const schema = freshSchema('clicut');
    assert.equal((await cli(['migrate', '--schema', schema])).code, 0);
    // The worker's own connections carry a name of their own, so that only they are cut.
    const application = `jc_cut_${randomBytes(4).toString('hex')}`;
    const url = new URL(databaseUrl());
    url.searchParams.set('application_name', application);
    const worker = spawn(process.execPath, [CLI, 'worker', TASKS, '--schema', schema], {
      env: { ...process.env, DATABASE_URL: url.toString(), JOBCHART_LOG_LEVEL: 'info' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = once(worker, 'exit') as Promise<[number | null]>;
    try {
      await stderrMatches(worker, /runtime started/);
      const cut = await withPool((pool) =>
        pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
          application,
        ]),
      );
      assert.ok((cut.rowCount ?? 0) > 0, 'the worker had connections to cut');
      await stderrMatches(worker, /database reachable again/);
    } finally {
      worker.kill('SIGTERM');
    }
    const [code] = await exited;
    assert.equal(code, 0, 'a worker stopped by a signal exits 0');
  });
});
