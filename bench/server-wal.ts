/**
 * How much write-ahead log the PostgreSQL server wrote: the drain workload reports it per job beside
 * the CPU figures, because what a system writes per job (row versions, index entries, their WAL)
 * is what separates a wide jobs table with several indexes from a minimal one, whatever runs on it.
 */
import pg from 'pg';

/**
 * walPosition is the server's current WAL insert position in bytes since its start of WAL; the
 * difference of two readings is what was written between them, by every database of the server.
 * Null when the server cannot say (a standby, or a role without the right to ask).
 */
export async function walPosition(databaseUrl: string): Promise<bigint | null> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query<{ bytes: string }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint::text AS bytes`,
    );
    const bytes = rows[0]?.bytes;
    return bytes === undefined ? null : BigInt(bytes);
  } catch {
    return null;
  } finally {
    await client.end();
  }
}
