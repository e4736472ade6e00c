/**
 * check-package packs jobchart as `npm pack` would publish it and checks the tarball:
 *   - publint: the package.json fields (exports, bin, files…) against the files in the tarball;
 *   - attw --profile esm-only: the types each entry point resolves to, for `import` under node16 and
 *     bundler resolution. The profile leaves out node10 (no `exports`) and node16-from-CJS, where attw's
 *     TypeScript (5.6) reports require() of an ES module as an error: Node 20.19+ and 22.12+ load it,
 *     which is what `engines` asks for;
 *   - unless --no-consumers: a scratch project outside the repository installs the tarball, loads it
 *     with require() and with import (and runs a task through jobchart/testing), and TypeScript
 *     type-checks imports of '.', './testing' and './machines/job' under node16, nodenext and bundler
 *     resolution (ESM) and nodenext (CommonJS), the published .d.ts files with skipLibCheck off.
 *
 * Plain JavaScript, so that it needs no build: `npm pack` runs `prepare`, which builds dist/.
 * Usage: node scripts/check-package.mjs [--no-consumers]   (npm run check:package)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);

function run(file, args, cwd = root) {
  process.stdout.write(`\n$ ${[file, ...args].join(' ')}\n`);
  const started = Date.now();
  execFileSync(file, args, { cwd, stdio: 'inherit' });
  process.stdout.write(`(${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
}

const work = mkdtempSync(join(tmpdir(), 'jobchart-package-'));
try {
  run('npm', ['pack', '--pack-destination', work]);
  const tarball = join(
    work,
    readdirSync(work).find((f) => f.endsWith('.tgz')),
  );

  run(bin('publint'), ['run', '--strict', tarball]);

  // attw does not expand the "./machines/*" pattern: name each machine module.
  const machines = readdirSync(join(root, 'machines'))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => `./machines/${f.slice(0, -'.ts'.length)}`);
  run(bin('attw'), [tarball, '--profile', 'esm-only', '--include-entrypoints', ...machines]);

  if (!process.argv.includes('--no-consumers')) checkConsumers(tarball);
  process.stdout.write('\ncheck-package: the tarball passed\n');
} finally {
  rmSync(work, { recursive: true, force: true });
}

function checkConsumers(tarball) {
  const dir = join(work, 'consumer');
  mkdirSync(dir);
  const files = {
    'package.json': JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    'cjs.cjs': `const { createRuntime } = require('jobchart');
const { runTask } = require('jobchart/testing');
const { jobMachine } = require('jobchart/machines/job');
for (const f of [createRuntime, runTask, jobMachine]) if (!f) throw new Error('require() missed an export');
console.log('require(): ok');
`,
    'esm.mjs': `import { createRuntime } from 'jobchart';
import { runTask } from 'jobchart/testing';
import { jobMachine } from 'jobchart/machines/job';
if (typeof createRuntime !== 'function' || !jobMachine) throw new Error('import missed an export');
const run = await runTask(async (payload) => ({ doubled: payload.n * 2 }), { n: 21 });
if (run.kind !== 'succeeded' || run.result.doubled !== 42) throw new Error(\`runTask: \${run.kind}\`);
console.log('import: ok');
`,
    'esm.ts': `import { createRuntime, defineTask, type Runtime } from 'jobchart';
import { jobMachine } from 'jobchart/machines/job';
import { runTask } from 'jobchart/testing';

const double = defineTask({ handler: async (payload: { n: number }) => ({ doubled: payload.n * 2 }) });
export const make = (): Runtime => createRuntime({ connectionString: 'postgres://localhost', tasks: { double } });
export const machine = jobMachine;
const run = await runTask(double, { n: 21 });
if (run.kind === 'succeeded') console.log(run.result);
`,
    'cjs.cts': `import { createRuntime } from 'jobchart';
import { runTask } from 'jobchart/testing';
import jobs = require('jobchart/machines/job');
export const all = [createRuntime, runTask, jobs.jobMachine] as const;
`,
  };
  // One configuration checks the published .d.ts files themselves (skipLibCheck off: a type they
  // import from a package the consumer does not get, like pg's, is an error there); the others only
  // how the imports resolve, which is quicker.
  const tsconfig = (module, moduleResolution, file, skipLibCheck = true) =>
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module,
        moduleResolution,
        strict: true,
        noEmit: true,
        skipLibCheck,
      },
      files: [file],
    });
  files['tsconfig.nodenext.json'] = tsconfig('nodenext', 'nodenext', 'esm.ts', false);
  files['tsconfig.node16.json'] = tsconfig('node16', 'node16', 'esm.ts');
  files['tsconfig.bundler.json'] = tsconfig('esnext', 'bundler', 'esm.ts');
  files['tsconfig.cjs.json'] = tsconfig('nodenext', 'nodenext', 'cjs.cts');
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);

  run('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--prefer-offline', tarball], dir);
  run(process.execPath, ['cjs.cjs'], dir);
  run(process.execPath, ['esm.mjs'], dir);
  for (const config of ['nodenext', 'node16', 'bundler', 'cjs']) {
    run(bin('tsc'), ['-p', `tsconfig.${config}.json`], dir);
  }
}
