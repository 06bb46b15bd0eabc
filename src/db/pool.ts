import pg from 'pg';

export type Db = pg.Pool;
export type DbClient = pg.PoolClient;
/** Anything that can run a query: the pool or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'>;

// timestamptz as Date, bigint counts as numbers (counts stay far below 2^53).
pg.types.setTypeParser(20, (v) => Number(v));

export function createPool(connectionString: string, max = 10): Db {
  const pool = new pg.Pool({ connectionString, max, application_name: 'send-engine' });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  return pool;
}

/**
 * Runs fn inside BEGIN/COMMIT, rolling back on any error. `setLocal` (e.g. `plan_cache_mode =
 * force_generic_plan`) is set for the transaction in the same round trip as BEGIN.
 */
export async function withTransaction<T>(db: Db, fn: (client: DbClient) => Promise<T>, options: { setLocal?: string } = {}): Promise<T> {
  const client = await db.connect();
  try {
    await client.query(options.setLocal ? `BEGIN; SET LOCAL ${options.setLocal}` : 'BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
