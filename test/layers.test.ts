import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';

// ROOT is the checkout: the test reads the TypeScript sources, not what was compiled from them.
const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), '..', '..'));

/**
 * RANKS orders the rooms: a module may import from its own room or from a lower rank, never from a
 * higher one nor from another room of its own rank (ARCHITECTURE.md says why each room is where it is).
 */
const RANKS: Record<string, number> = {
  machines: 0,
  'src/core': 1,
  'src/storage': 2,
  'src/jobs': 3,
  'src/dispatch': 4,
  'src/maintenance': 4,
  'src/wake': 4,
  'src/telemetry': 4,
  'src/api': 5,
  'src/dashboard': 6,
  'src/testing': 6,
  src: 7,
};

// sources lists the .ts files under `dir`, relative to the checkout.
function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

// RELATIVE_IMPORT finds every relative import or re-export, type-only ones included.
const RELATIVE_IMPORT = /(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g;

describe('the rooms of the source', () => {
  const files = [...sources('machines'), ...sources('src')];

  it('knows every room', () => {
    const rooms = new Set(files.map((file) => dirname(file)));
    assert.deepEqual(
      [...rooms].filter((room) => !(room in RANKS)),
      [],
    );
  });

  it('imports flow one way: down the ranks, never across rooms of one rank', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const room = dirname(file);
      for (const [, specifier] of readFileSync(join(ROOT, file), 'utf8').matchAll(RELATIVE_IMPORT)) {
        const target = relative(ROOT, join(ROOT, room, specifier as string));
        const targetRoom = dirname(target);
        if (targetRoom === room) continue;
        if ((RANKS[targetRoom] ?? Number.POSITIVE_INFINITY) >= (RANKS[room] ?? 0))
          wrong.push(`${file} imports ${target}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('keeps SQL in src/storage', () => {
    const sql = /\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b[^'`]*\b(FROM|SET|VALUES|WHERE)\b/;
    const outside = files.filter(
      (file) => !file.startsWith('src/storage/') && sql.test(readFileSync(join(ROOT, file), 'utf8')),
    );
    assert.deepEqual(outside, []);
  });

  it('keeps every module under 500 lines', () => {
    const long = files
      .map((file) => ({ file, lines: readFileSync(join(ROOT, file), 'utf8').split('\n').length }))
      .filter(({ lines }) => lines > 500);
    assert.deepEqual(long, []);
  });
});
