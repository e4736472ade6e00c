import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { databaseUrl, freshSchema, testRuntime, withPool } from './support/helpers.js';

const CLI = new URL('../src/cli.js', import.meta.url).pathname;
const TASKS = new URL('./fixtures/tasks.js', import.meta.url).pathname;

async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, DATABASE_URL: databaseUrl(), ...env },
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
  it('dashboard serves the JSON API until SIGTERM, read-only when asked', async () => {
    const schema = freshSchema('cli_dash');
    assert.equal((await cli(['migrate', '--schema', schema])).code, 0);
    const child = spawn(
      process.execPath,
      [CLI, 'dashboard', '--schema', schema, '--port', '0', '--read-only'],
      {
        env: { ...process.env, DATABASE_URL: databaseUrl() },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    await stderrMatches(child, /dashboard on http:\/\/127\.0\.0\.1:[0-9]+\/\n/);
    const url = /dashboard on (http:\/\/\S+)\n/.exec(stderr)?.[1] as string;
    const session = (await (await fetch(`${url}api/session`)).json()) as { readOnly: boolean };
    assert.equal(session.readOnly, true);
    assert.equal((await fetch(`${url}api/stats`)).status, 200);
    child.kill('SIGTERM');
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, stderr);
    const misplaced = await cli(['jobs', '--schema', schema, '--port', '4000']);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /^jobs: --port applies to dashboard/);
  });

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

    // get prints the job without stacks: lastError is the error's one line, each attempt's stack
    // shows with --stack only.
    const got = await cli(['get', failing.id, '--schema', schema]);
    assert.equal(got.code, 0);
    const shown = JSON.parse(got.stdout) as {
      lastError: string;
      errors: { message: string; stack?: string }[];
    };
    assert.equal(shown.lastError, 'Error: always fails');
    assert.deepEqual(
      shown.errors.map((e) => [e.message, 'stack' in e]),
      [['Error: always fails', false]],
    );
    assert.doesNotMatch(got.stdout, /\s+at /, 'no frames anywhere');
    const stacked = await cli(['get', failing.id, '--schema', schema, '--stack']);
    assert.equal(stacked.code, 0);
    const withStack = JSON.parse(stacked.stdout) as { errors: { stack?: string }[] };
    assert.match(withStack.errors[0]?.stack ?? '', /^Error: always fails\n {4}at .*tasks\.js/);

    const retried = await cli(['retry', failing.id, '--schema', schema]);
    assert.equal(retried.code, 0);
    assert.equal(JSON.parse(retried.stdout).state, 'not_started');

    const refused = await cli(['retry', job.id, '--schema', schema]);
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      `job ${job.id} has succeeded: only a failed, cancelled or expired job can be retried (the machine refuses RESTART in succeeded)\n`,
      'one line in plain words, naming the states the machine accepts RESTART from',
    );
    await producer.stop();
  });

  it('clean runs one retention pass and prints what it deleted', async () => {
    const schema = freshSchema('cli_clean');
    assert.equal((await cli(['migrate', '--schema', schema])).code, 0);
    await withPool(async (pool) => {
      // Two succeeded jobs: one finished two days ago (past the default day), one a minute ago.
      await pool.query(
        `INSERT INTO "${schema}".jobs (task, state, created_at, updated_at, finished_at)
         SELECT 'old', 'succeeded', f, f, f FROM unnest(ARRAY[now() - interval '2 days', now() - interval '1 minute']) AS f`,
      );
      const cleaned = await cli(['clean', '--schema', schema]);
      assert.equal(cleaned.code, 0, cleaned.stderr);
      assert.match(cleaned.stdout, /^succeeded\t1$/m);
      assert.match(cleaned.stdout, /^failed\t0$/m);
      const left = await pool.query(
        `SELECT finished_at > now() - interval '1 hour' AS young FROM "${schema}".jobs`,
      );
      assert.deepEqual(left.rows, [{ young: true }]);
      // A failed job two days old is kept by default (30 days) and deleted with --keep-failed 1d; the
      // young succeeded one is kept forever however old the default would allow.
      await pool.query(
        `INSERT INTO "${schema}".jobs (task, state, created_at, updated_at, finished_at)
         SELECT 'old', 'failed', f, f, f FROM (SELECT now() - interval '2 days' AS f) AS t`,
      );
      const kept = await cli(['clean', '--schema', schema]);
      assert.match(kept.stdout, /^failed\t0$/m);
      const flagged = await cli([
        'clean',
        '--schema',
        schema,
        '--keep-failed',
        '1d',
        '--keep-succeeded',
        'forever',
      ]);
      assert.equal(flagged.code, 0, flagged.stderr);
      assert.match(flagged.stdout, /^failed\t1$/m);
      assert.match(flagged.stdout, /^succeeded\t0$/m);
      const bad = await cli(['clean', '--schema', schema, '--keep-failed', '30']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^clean: --keep-failed expected a duration such as 90s, 12h or 30d/);
      const elsewhere = await cli(['jobs', '--schema', schema, '--keep-failed', '1d']);
      assert.equal(elsewhere.code, 2);
      assert.match(elsewhere.stderr, /^jobs: --keep-failed applies to clean/);
    });
  });

  it('explains its usage on a mistake, on stderr, and exits 2', async () => {
    const none = await cli([]);
    assert.equal(none.code, 2, 'no command is a mistake, not a success');
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /^expected a command\n\nusage: jobchart/);
    const unknown = await cli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /^unknown command frobnicate\n/);
    assert.match(unknown.stderr, /usage: jobchart/);
    const mistakes: [string[], RegExp][] = [
      [['worker'], /^worker: expected the path of a module of tasks/],
      [['worker', './no-such-module.js'], /^worker: cannot find the module \.\/no-such-module\.js/],
      [['get'], /^get: expected a job id\n/],
      [['retry', 'abc'], /^retry: expected a job id \(a positive integer\), received abc\n/],
      [['cancel', '1', '2'], /^cancel: unexpected argument 2\n/],
      [['migrate', 'now'], /^migrate: unexpected argument now\n/],
      [['jobs', '--stack'], /^jobs: --stack applies to the commands that print a job\n/],
      [['jobs', '--frobnicate'], /Unknown option '--frobnicate'/],
    ];
    for (const [args, message] of mistakes) {
      const result = await cli(args);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, message, args.join(' '));
      assert.match(result.stderr, /usage: jobchart/, args.join(' '));
    }
    const help = await cli(['help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: jobchart/);
    assert.equal((await cli(['--help'])).code, 0);
  });

  it('pauses and resumes a queue and lists the queues with their jobs per state', async () => {
    const schema = freshSchema('cliqueues');
    assert.equal((await cli(['migrate', '--schema', schema])).code, 0);
    const producer = testRuntime({ schema });
    await producer.start();
    try {
      await producer.enqueueMany([{ task: 'a', queue: 'mail' }, { task: 'a', queue: 'mail' }, { task: 'b' }]);
    } finally {
      await producer.stop();
    }
    const paused = await cli(['pause', 'mail', '--schema', schema]);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /^queue mail paused since \d{4}-\d\d-\d\dT[0-9:.]+Z\n$/);
    const listed = await cli(['queues', '--schema', schema]);
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.trimEnd().split('\n');
    assert.deepEqual(lines[0]?.split('\t'), [
      'queue',
      'paused',
      'not_started',
      'running',
      'retry',
      'interrupted',
      'succeeded',
      'failed',
      'cancelled',
      'expired',
    ]);
    assert.deepEqual(lines[1]?.split('\t'), ['default', 'no', '1', '0', '0', '0', '0', '0', '0', '0']);
    assert.deepEqual(
      lines[2]?.split('\t').filter((_, i) => i !== 1),
      ['mail', '2', '0', '0', '0', '0', '0', '0', '0'],
    );
    assert.match(lines[2]?.split('\t')[1] ?? '', /^since /);
    const resumed = await cli(['resume', 'mail', '--schema', schema]);
    assert.deepEqual([resumed.code, resumed.stdout], [0, 'queue mail resumed\n']);
    assert.match((await cli(['queues', '--schema', schema])).stdout, /\nmail\tno\t2\t/);
    const bad = await cli(['pause', 'no good', '--schema', schema]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^pause: expected a queue name matching/);
    assert.equal((await cli(['resume', '--schema', schema])).code, 2, 'no queue name');
    assert.equal((await cli(['queues', 'x', '--schema', schema])).code, 2, 'queues takes no argument');
  });

  it('says in one line on stderr, exiting 1, that a job does not exist, and how to list those that do', async () => {
    const schema = freshSchema('climissing');
    assert.equal((await cli(['migrate', '--schema', schema])).code, 0);
    for (const command of ['get', 'retry', 'cancel', 'remove']) {
      const result = await cli([command, '999999999', '--schema', schema]);
      assert.equal(result.code, 1, command);
      assert.equal(result.stdout, '', `${command} prints no job (get used to print null and exit 0)`);
      assert.equal(
        result.stderr,
        `job 999999999 does not exist in schema "${schema}" (\`jobchart jobs --schema ${schema}\` lists the jobs there are)\n`,
        command,
      );
    }
  });

  it('names the fix when the schema is not migrated or no database is given', async () => {
    const schema = freshSchema('cliunmigrated');
    const unmigrated = await cli(['get', '1', '--schema', schema]);
    assert.equal(unmigrated.code, 1);
    assert.match(
      unmigrated.stderr,
      new RegExp(
        `^schema "${schema}" is at migration 0, expected \\d+: run \`jobchart migrate --schema ${schema}\`\n$`,
      ),
    );
    const jobs = await cli(['jobs', '--schema', schema]);
    assert.equal(jobs.code, 1);
    assert.match(jobs.stderr, /run `jobchart migrate/);
    assert.equal((await cli(['migrate', '--schema', schema])).code, 0, 'the fix it names works');
    assert.equal((await cli(['jobs', '--schema', schema])).code, 0);

    const nowhere = await cli(['jobs'], { DATABASE_URL: '' });
    assert.equal(nowhere.code, 1);
    assert.equal(nowhere.stderr, 'no database: set DATABASE_URL or pass --database-url postgres://…\n');
    const unreachable = await cli(['jobs'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
    assert.equal(unreachable.code, 1);
    assert.match(
      unreachable.stderr,
      /^cannot reach PostgreSQL \(ECONNREFUSED: .*\): check DATABASE_URL or --database-url\n$/,
    );
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
