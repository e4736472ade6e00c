// Every ```ts block of README.md is type-checked against the built package, so that the examples stay
// true to the API. Each block becomes its own module in <repo>/.readme-check/, where `import … from
// 'jobchart'` and 'jobchart/testing' resolve through the package's self-reference (its exports map, so
// `npx tsc` must have built dist/src first). A block that is deliberately a fragment (it uses a
// `runtime` or a `client` it does not declare) is preceded by an HTML comment, invisible on GitHub, that
// holds what it stands on:
//
//   <!-- ts-check: prelude
//   import type { Runtime } from 'jobchart';
//   declare const runtime: Runtime;
//   -->
//
// The prelude is put before the block; diagnostics are reported with the README line they fall on.
// No block is skipped. No database is needed: nothing runs.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const readmePath = join(repo, 'README.md');
const workDir = join(repo, '.readme-check');

export interface ReadmeBlock {
  /** 1-based number among the README's ```ts blocks. */
  index: number;
  /** README line of the block's first line of code (the line after the fence). */
  firstLine: number;
  code: string;
  prelude: string;
}

/** The ```ts blocks of a markdown text, each with the prelude of a `<!-- ts-check: prelude … -->` before it. */
export function extractTsBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const blocks: ReadmeBlock[] = [];
  let prelude = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.startsWith('<!-- ts-check: prelude')) {
      const body: string[] = [];
      for (i++; i < lines.length && !(lines[i] ?? '').startsWith('-->'); i++) body.push(lines[i] ?? '');
      prelude = body.join('\n');
      continue;
    }
    const fence = /^```(\S*)/.exec(line);
    if (!fence) continue;
    const start = i + 1;
    for (i++; i < lines.length && !(lines[i] ?? '').startsWith('```'); i++);
    if (fence[1] === 'ts' || fence[1] === 'typescript') {
      blocks.push({
        index: blocks.length + 1,
        firstLine: start + 1,
        code: lines.slice(start, i).join('\n'),
        prelude,
      });
    }
    prelude = '';
  }
  return blocks;
}

const blocks = extractTsBlocks(readFileSync(readmePath, 'utf8'));
const failures = new Map<number, string[]>();

function fileOf(block: ReadmeBlock): string {
  return join(workDir, `block-${String(block.index).padStart(2, '0')}.ts`);
}

before(() => {
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  for (const block of blocks) {
    const head = block.prelude === '' ? '' : `${block.prelude}\n`;
    // `export {}` makes every block a module (top-level await, no clashes between blocks).
    writeFileSync(fileOf(block), `${head}${block.code}\nexport {};\n`);
  }
  const program = ts.createProgram(blocks.map(fileOf), {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  });
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const block = blocks.find((b) => d.file !== undefined && resolve(d.file.fileName) === fileOf(b));
    if (block === undefined || d.file === undefined || d.start === undefined) {
      failures.set(0, [...(failures.get(0) ?? []), message]);
      continue;
    }
    const line = d.file.getLineAndCharacterOfPosition(d.start).line;
    const preludeLines = block.prelude === '' ? 0 : block.prelude.split('\n').length;
    const where =
      line < preludeLines
        ? `its ts-check prelude, line ${line + 1}`
        : `README.md:${block.firstLine + line - preludeLines}`;
    failures.set(block.index, [
      ...(failures.get(block.index) ?? []),
      `block ${block.index}, ${where}: ${message}`,
    ]);
  }
});

after(() => {
  rmSync(workDir, { recursive: true, force: true });
});

test('README.md has ```ts blocks to check', () => {
  assert.ok(blocks.length > 0);
  assert.deepEqual(failures.get(0) ?? [], [], 'diagnostics outside the README blocks');
});

for (const block of blocks) {
  test(`README ts block ${block.index} (line ${block.firstLine}) type-checks`, () => {
    const found = failures.get(block.index) ?? [];
    assert.equal(found.length, 0, `\n${found.join('\n')}`);
  });
}
