import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DatabaseStatus } from '../src/core/database-status.js';
import { sourcesOf, targetOf } from '../src/core/transitions.js';
import { SimulatedClock, ValidationError } from '../src/index.js';
import { type MaintenanceService, Periodic, periodicConfig } from '../src/maintenance/periodic.js';
import { Sweeper } from '../src/maintenance/sweeper.js';
import { Storage } from '../src/storage/storage.js';
import { freshSchema, gate, quietLogger, testRuntime, withPool } from './support/helpers.js';

// CountingService counts its rounds; each round waits for the gate `hold` when one is set.
class CountingService implements MaintenanceService<number> {
  readonly name = 'counting';
  rounds = 0;
  hold: Promise<void> | null = null;
  async runOnce(): Promise<number> {
    this.rounds++;
    await this.hold;
    return this.rounds;
  }
}

describe('the periodic maintenance shape', () => {
  it('runs a round every interval of its clock, and none after stop()', async () => {
    const clock = new SimulatedClock();
    const service = new CountingService();
    const seen: number[] = [];
    let heard = gate();
    const periodic = new Periodic(
      service,
      clock,
      periodicConfig('counting', {}, { intervalMs: 100, runAtStart: false, whenBusy: 'skip' }),
      {
        onRun: (counts) => {
          seen.push(counts);
          heard.open();
        },
        onError: assert.fail,
      },
    );
    periodic.start();
    assert.equal(service.rounds, 0, 'no round before the first interval');
    clock.advance(100);
    await heard.opened;
    heard = gate();
    clock.advance(100);
    await heard.opened;
    await periodic.stop();
    clock.advance(1_000);
    assert.deepEqual(seen, [1, 2]);
  });

  it('runs once more after the round under way, however often triggered meanwhile; a tick meanwhile skips', async () => {
    const clock = new SimulatedClock();
    const service = new CountingService();
    const hold = gate();
    service.hold = hold.opened;
    const periodic = new Periodic(
      service,
      clock,
      { intervalMs: 100, runAtStart: true, whenBusy: 'skip' },
      { onError: assert.fail },
    );
    periodic.start();
    assert.equal(service.rounds, 1);
    periodic.trigger();
    periodic.trigger();
    clock.advance(100);
    assert.equal(service.rounds, 1, 'neither the triggers nor the tick start a second round at once');
    hold.open();
    await periodic.stop();
    assert.equal(service.rounds, 2, 'the triggers made exactly one more round');
  });

  it("a tick that finds a round under way asks for one more when whenBusy is 'once-more'", async () => {
    const clock = new SimulatedClock();
    const service = new CountingService();
    const hold = gate();
    service.hold = hold.opened;
    const periodic = new Periodic(
      service,
      clock,
      { intervalMs: 100, runAtStart: true, whenBusy: 'once-more' },
      { onError: assert.fail },
    );
    periodic.start();
    clock.advance(100);
    hold.open();
    await periodic.stop();
    assert.equal(service.rounds, 2, 'the busy tick was run right after the round under way');
  });

  it('validates its interval', () => {
    for (const intervalMs of [0, -1, 1.5, Number.NaN, 2 ** 31])
      assert.throws(
        () =>
          periodicConfig('heartbeat', { intervalMs }, { intervalMs: 1, runAtStart: false, whenBusy: 'skip' }),
        (error: unknown) => error instanceof ValidationError && error.field === 'heartbeat.intervalMs',
      );
  });
});

describe('the sweeper', () => {
  it("runOnce takes back a dead consumer's jobs as the machine's INTERRUPT decides, and counts them", async () => {
    const schema = freshSchema('sweeper');
    const producer = testRuntime({ schema });
    await producer.start();
    const [resumes, fails, alive] = await producer.enqueueMany([
      { task: 'work' },
      { task: 'work' },
      { task: 'work' },
    ]);
    await producer.stop();
    const now = new Date('2026-12-01T12:00:00Z');
    await withPool(async (pool) => {
      await pool.query(
        `INSERT INTO "${schema}".consumers (id, name, host, pid, started_at, last_heartbeat)
         VALUES ('dead', 'w', 'h', 1, $1, $1), ('alive', 'w', 'h', 2, $2, $2)`,
        [new Date(now.getTime() - 60_000), now],
      );
      await pool.query(
        `UPDATE "${schema}".jobs SET state = 'running', attempts = 1,
                locked_by = CASE WHEN id = $2 THEN 'alive' ELSE 'dead' END,
                interruptions = CASE WHEN id = $1 THEN 1 ELSE 0 END`,
        [fails?.id, alive?.id],
      );
      const storage = new Storage(pool, schema, { from: sourcesOf('CLAIM'), to: targetOf('CLAIM') });
      const clock = new SimulatedClock(now);
      const sweeper = new Sweeper(
        storage,
        targetOf('CLAIM'),
        { consumerTimeoutMs: 5_000, maxInterruptions: 2 },
        new DatabaseStatus(clock, quietLogger),
      );
      const counts = await sweeper.runOnce(now);
      assert.deepEqual(counts.consumers, ['dead']);
      assert.equal(counts.interrupted, 1);
      assert.equal(counts.failed, 1);
      const rows = await pool.query<{ id: string; state: string; attempts: number; interruptions: number }>(
        `SELECT id::text, state, attempts, interruptions FROM "${schema}".jobs ORDER BY id`,
      );
      assert.deepEqual(rows.rows, [
        { id: resumes?.id, state: 'interrupted', attempts: 0, interruptions: 1 },
        { id: fails?.id, state: 'failed', attempts: 1, interruptions: 2 },
        { id: alive?.id, state: 'running', attempts: 1, interruptions: 0 },
      ]);
      const again = await sweeper.runOnce(now);
      assert.deepEqual([again.consumers, again.jobs], [[], []], 'a second sweep finds nothing left to do');
    });
  });
});
