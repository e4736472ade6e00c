import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SchemaNotMigratedError, SchemaTooNewError, ValidationError } from '../src/index.js';
import { loadMigrations, migrate } from '../src/storage/migrator.js';
import { freshSchema, testRuntime, withPool } from './support/helpers.js';

describe('migrator', () => {
  it('applies every migration once when several processes start at the same time', async () => {
    const schema = freshSchema('migrate');
    const migrations = await loadMigrations();
    const applied = await withPool(async (pool) => {
      // Each migrate() takes its own connection, as separate processes would.
      const runs = await Promise.all(Array.from({ length: 6 }, () => migrate(pool, schema, migrations)));
      const rows = await pool.query(`SELECT version FROM "${schema}".migrations ORDER BY version`);
      return { runs, versions: rows.rows.map((r) => r.version) };
    });
    assert.deepEqual(
      applied.versions,
      migrations.map((m) => m.version),
    );
    assert.equal(applied.runs.flat().length, migrations.length, 'each file applied by exactly one run');
  });

  it('refuses a schema migrated by a newer jobchart', async () => {
    const schema = freshSchema('newer');
    const runtime = testRuntime({ schema });
    await runtime.start();
    await runtime.stop();
    await withPool((pool) =>
      pool.query(`INSERT INTO "${schema}".migrations (version, name) VALUES (9999, 'future')`),
    );
    await assert.rejects(testRuntime({ schema }).start(), SchemaTooNewError);
    await assert.rejects(testRuntime({ schema }).start({ migrate: false }), SchemaTooNewError);
  });

  it('refuses to enqueue into a schema that was never migrated, and writes nothing', async () => {
    const schema = freshSchema('never');
    const producer = testRuntime({ schema });
    await assert.rejects(producer.enqueue('anything', {}), SchemaNotMigratedError);
    await producer.stop();
    await assert.rejects(testRuntime({ schema }).start({ migrate: false }), SchemaNotMigratedError);
    const exists = await withPool((pool) =>
      pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]),
    );
    assert.equal(exists.rowCount, 0, 'no schema was created');
  });

  it('validates the schema name before touching the database', () => {
    for (const schema of ['', 'Bad', 'a-b', 'x;drop table jobs', '1abc', 'a'.repeat(49)]) {
      assert.throws(() => testRuntime({ schema }), ValidationError, schema);
    }
  });
});
